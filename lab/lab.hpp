// lab/lab.hpp: `knit lab`, a NetworkPolicy sandbox on one machine (real kernel, no cluster).
//
// Design. A lab is a node network namespace (knit-lab-<N>, with an uplink veth whose peer stays
// inside) and one namespace per Pod of a manifests directory, wired by the real CNI path: the
// supervisor execs knit itself with CNI_COMMAND=ADD, K8S_POD_NAMESPACE/K8S_POD_NAME in CNI_ARGS
// and a dual-stack configuration, from inside the node namespace, exactly as a runtime on that
// node would. `knit agent` runs in the node namespace on the same directory, so policies are
// enforced by the node's nftables on the forward path between pods, as on a real node.
//
// `knit lab up` forks a supervisor (own session, logging to /run/knit/lab/<N>/lab.log) that
// owns everything long-lived, in one epoll loop: the servers inside the pods (a socket per
// declared containerPort, created in the pod's namespace; SCTP by raw sockets since the kernel
// has no SCTP), the agent child (restarted with backoff), an inotify watch on the directory
// (pods added or removed there are wired or torn down; labels, namespaces and policies are the
// agent's), and a control socket whose "sync" makes it re-read the directory on demand.
// `up` returns once every pod is wired and served and the agent reports synced.
//
// Everything else is a short-lived command reading /run/knit/lab/<N>/state.json, which the
// supervisor rewrites atomically on every change: `status` prints it; `probe` syncs the
// supervisor, waits (agent protocol "wait") until the agent has applied the directory's current
// digest, then probes every pod from every pod at once from sockets it opens in the source pods'
// namespaces; `down` signals the supervisor, which DELs its pods and removes its namespaces, then
// sweeps whatever a crash may have left (namespaces are found by their "knit-lab-<N>." prefix).
// The supervisor holds a flock on the run directory's lock file for its lifetime, which is how
// `up` refuses a second lab of the same name and `down` knows the supervisor is gone.
//
// Nothing here touches the machine's own network namespace, and nothing execs ip or nft:
// namespaces are made with unshare and a bind mount, the uplink with rtnetlink.
#pragma once

namespace knit::lab {

/// `knit lab ...` with argv[0] = "knit" and argv[1] = "lab". Returns the exit code: 0, 1 when
/// the command failed (one line on stderr says why), 2 for a usage error.
int main(int argc, char** argv);

}  // namespace knit::lab
