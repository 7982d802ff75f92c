// lab/prober.hpp: runs a matrix of probes in parallel (I/O).
//
// Every probe's socket is created inside its source pod's namespace (the thread visits the
// namespace to create it; the socket keeps it), then one poll loop waits for all of them, so a
// matrix costs about one timeout however many cells are denied. TCP: a non-blocking connect
// that completes. UDP: a datagram echoed back. SCTP: an INIT from a raw socket answered by an
// INIT-ACK with our tag (lab/sctp.hpp). Failures are tried again once, with fresh sockets and
// ports, so a lost packet is not reported as a denial.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "lab/probe_plan.hpp"

namespace knit::lab {

/// Runs `probes`; `netns[i]` is the namespace path of matrix pod i. Returns one result per
/// probe. Each round waits at most `timeout`; probes that failed run again, `attempts` rounds
/// in all. Throws Error(kIo / kUnknownContainer) when a namespace or socket cannot be opened.
std::vector<bool> run_probes(const std::vector<Probe>& probes,
                             const std::vector<std::string>& netns, Protocol protocol,
                             std::chrono::milliseconds timeout, int attempts = 2);

}  // namespace knit::lab
