// lab/render.hpp: the lab's texts (pure): state.json, status and matrix as tables and JSON.
#pragma once

#include <string>
#include <string_view>

#include "lab/lab_types.hpp"

namespace knit::lab {

/// state.json: {"name","dir","runDir","log","controlSocket","node":{"netns","ips"},
/// "supervisor":{"pid","startTime"},"agent":{"enabled","socket","pid","startTime"},
/// "manifestsDigest","pods":[{"namespace","name","containerID","netns","ips","ports":[{"name",
/// "port","protocol"}],"error"}]} (see README "knit lab").
std::string encode_state(const LabState& s);
/// Throws Error(kDecode) naming what is wrong.
LabState decode_state(std::string_view text);

/// `knit lab status -o json`: the state with "running" (is the supervisor alive) first.
std::string render_status_json(const LabState& s, bool running);
/// `knit lab status`: a header about the lab, then one row per pod.
std::string render_status_table(const LabState& s, bool running);

/// `knit lab probe -o json`: {"port":80,"protocol":"TCP","pods":[...],"matrix":{from:{to:bool}}}
/// with pods and keys in matrix order; a named port is a string. Self cells are included.
std::string render_matrix_json(const Matrix& m);
/// `knit lab probe`: rows are sources, columns destinations, one glyph per cell, a legend, a
/// count, and a line per destination that lacks the named port or an address.
std::string render_matrix_table(const Matrix& m);
/// "TCP port 80" or "TCP port serve-80-tcp".
std::string describe_port(const PortRef& port, Protocol protocol);

}  // namespace knit::lab
