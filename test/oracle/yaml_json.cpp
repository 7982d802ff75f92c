#include "test/oracle/yaml_json.hpp"

#include <yaml.h>

#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <stdexcept>

namespace knit::test::oracle {
namespace {

using nlohmann::json;

std::string where(const std::string& origin, const yaml_mark_t& mark) {
  return origin + ":" + std::to_string(mark.line + 1);
}

json plain_scalar(const std::string& s, const std::string& at) {
  static const std::regex kNull("null|Null|NULL|~|");
  static const std::regex kTrue("true|True|TRUE");
  static const std::regex kFalse("false|False|FALSE");
  static const std::regex kInt("[-+]?[0-9]+");
  static const std::regex kFloat("[-+]?([0-9]*\\.[0-9]+|[0-9]+\\.[0-9]*)([eE][-+]?[0-9]+)?");
  static const std::regex kYaml11Bool("y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF");
  if (std::regex_match(s, kNull)) return nullptr;
  if (std::regex_match(s, kTrue)) return true;
  if (std::regex_match(s, kFalse)) return false;
  if (std::regex_match(s, kInt)) return std::stoll(s);
  if (std::regex_match(s, kFloat)) return std::stod(s);
  if (std::regex_match(s, kYaml11Bool)) {
    throw std::runtime_error(at + ": plain scalar '" + s +
                             "' is a boolean to YAML 1.1 readers; quote it");
  }
  return s;
}

/// Pulls libyaml events one at a time (the event API keeps what the document API loses:
/// whether a scalar was plain and untagged, which is what decides its type).
class Events {
 public:
  Events(std::string_view text, const std::string& origin) : origin_(origin) {
    if (!yaml_parser_initialize(&parser_)) throw std::runtime_error(origin + ": yaml parser init");
    yaml_parser_set_input_string(&parser_, reinterpret_cast<const unsigned char*>(text.data()),
                                 text.size());
  }
  ~Events() {
    if (has_event_) yaml_event_delete(&event_);
    yaml_parser_delete(&parser_);
  }
  Events(const Events&) = delete;
  Events& operator=(const Events&) = delete;

  /// Advances to the next event and returns it.
  const yaml_event_t& next() {
    if (has_event_) yaml_event_delete(&event_);
    has_event_ = false;
    if (!yaml_parser_parse(&parser_, &event_)) {
      throw std::runtime_error(where(origin_, parser_.problem_mark) + ": " +
                               (parser_.problem ? parser_.problem : "YAML syntax error"));
    }
    has_event_ = true;
    return event_;
  }
  const yaml_event_t& current() const { return event_; }
  std::string at() const { return where(origin_, event_.start_mark); }

 private:
  std::string origin_;
  yaml_parser_t parser_;
  yaml_event_t event_;
  bool has_event_ = false;
};

std::string text_of(const unsigned char* s) {
  return s ? reinterpret_cast<const char*>(s) : "";
}

/// The node starting at the current event; leaves the parser on the node's last event.
json node(Events& ev, std::map<std::string, json>& anchors, int depth) {
  if (depth > 64) throw std::runtime_error(ev.at() + ": nested too deep");
  const yaml_event_t& e = ev.current();
  json out;
  std::string anchor;
  switch (e.type) {
    case YAML_ALIAS_EVENT: {
      auto it = anchors.find(text_of(e.data.alias.anchor));
      if (it == anchors.end()) throw std::runtime_error(ev.at() + ": unknown alias");
      return it->second;
    }
    case YAML_SCALAR_EVENT: {
      anchor = text_of(e.data.scalar.anchor);
      std::string value(reinterpret_cast<const char*>(e.data.scalar.value), e.data.scalar.length);
      bool plain = e.data.scalar.style == YAML_PLAIN_SCALAR_STYLE && e.data.scalar.plain_implicit;
      out = plain ? plain_scalar(value, ev.at()) : json(value);
      break;
    }
    case YAML_SEQUENCE_START_EVENT: {
      anchor = text_of(e.data.sequence_start.anchor);
      out = json::array();
      while (ev.next().type != YAML_SEQUENCE_END_EVENT) out.push_back(node(ev, anchors, depth + 1));
      break;
    }
    case YAML_MAPPING_START_EVENT: {
      anchor = text_of(e.data.mapping_start.anchor);
      out = json::object();
      while (ev.next().type != YAML_MAPPING_END_EVENT) {
        if (ev.current().type != YAML_SCALAR_EVENT) {
          throw std::runtime_error(ev.at() + ": mapping key is not a scalar");
        }
        std::string key(reinterpret_cast<const char*>(ev.current().data.scalar.value),
                        ev.current().data.scalar.length);
        if (out.contains(key)) throw std::runtime_error(ev.at() + ": duplicate key '" + key + "'");
        ev.next();
        out[key] = node(ev, anchors, depth + 1);
      }
      break;
    }
    default:
      throw std::runtime_error(ev.at() + ": unexpected YAML event");
  }
  if (!anchor.empty()) anchors[anchor] = out;
  return out;
}

}  // namespace

std::vector<json> yaml_documents(std::string_view text, const std::string& origin) {
  Events ev(text, origin);
  std::vector<json> docs;
  for (;;) {
    yaml_event_type_t type = ev.next().type;
    if (type == YAML_STREAM_END_EVENT) break;
    if (type != YAML_DOCUMENT_START_EVENT) continue;  // STREAM_START
    std::map<std::string, json> anchors;
    ev.next();
    json value = node(ev, anchors, 0);
    if (ev.next().type != YAML_DOCUMENT_END_EVENT) {
      throw std::runtime_error(ev.at() + ": expected the end of the document");
    }
    if (!value.is_null()) docs.push_back(std::move(value));
  }
  return docs;
}

std::vector<json> yaml_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("read " + path + ": cannot open");
  std::ostringstream text;
  text << in.rdbuf();
  return yaml_documents(text.str(), path);
}

}  // namespace knit::test::oracle
