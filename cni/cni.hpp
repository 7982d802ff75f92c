// cni/cni.hpp: the CNI plugin (spec 1.1.0; 0.3.0 to 1.0.0 requests accepted).
//
// ADD reserves addresses in the embedded IPAM store together with a record of the attachment,
// then wires a routed veth pair over rtnetlink (cni/wiring.hpp). Every step that creates state
// registers its inverse; a failure half-way undoes them, so nothing stays reserved or linked.
// DEL works from knit's own record, never from the container's namespace: it removes the host
// routes, releases the addresses, and returns; the veth itself is deleted by a detached child
// because the kernel's device teardown waits for RCU grace periods (~20 ms) and has no reason to
// sit on DEL's critical path. GC removes every attachment the runtime no longer lists, plus any
// knit link whose record is gone. STATUS reports an unusable store or a full pool.
#pragma once

#include <string>
#include <string_view>

#include "conf/netconf.hpp"

namespace knit::cni {

/// Runs one CNI invocation described by `getenv` and `stdin_text`. Writes the result (or the
/// spec's error JSON) to `out` and returns the process exit code (0 or 1). Never throws.
int run(const conf::Getenv& getenv, std::string_view stdin_text, std::string& out);

}  // namespace knit::cni
