// conf/result_types.hpp: a CNI result as plain values, independent of the wire version.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/ip.hpp"

namespace knit::conf {

struct ResultInterface {
  std::string name;
  std::string mac;
  std::optional<uint32_t> mtu;  ///< rendered from 1.1.0 on
  std::string sandbox;          ///< netns path for container interfaces, empty on the host
  std::string socket_path;      ///< 1.1.0, passed through from other plugins
  std::string pci_id;           ///< 1.1.0, passed through from other plugins
  friend bool operator==(const ResultInterface&, const ResultInterface&) = default;
};

struct ResultIp {
  Prefix address;               ///< address with its prefix length
  std::optional<IpAddr> gateway;
  std::optional<int> interface; ///< index into Result::interfaces
  friend bool operator==(const ResultIp&, const ResultIp&) = default;
};

struct ResultRoute {
  Prefix dst;
  std::optional<IpAddr> gw;
  std::optional<uint32_t> mtu;       ///< 1.1.0
  std::optional<uint32_t> advmss;    ///< 1.1.0
  std::optional<uint32_t> priority;  ///< 1.1.0
  std::optional<uint32_t> table;     ///< 1.1.0
  std::optional<uint32_t> scope;     ///< 1.1.0
  friend bool operator==(const ResultRoute&, const ResultRoute&) = default;
};

struct Dns {
  std::vector<std::string> nameservers;
  std::string domain;
  std::vector<std::string> search;
  std::vector<std::string> options;
  friend bool operator==(const Dns&, const Dns&) = default;
};

struct Result {
  std::vector<ResultInterface> interfaces;
  std::vector<ResultIp> ips;
  std::vector<ResultRoute> routes;
  Dns dns;
  friend bool operator==(const Result&, const Result&) = default;
};

}  // namespace knit::conf
