#!/bin/sh
# make bench: builds, then runs every benchmark in throwaway namespaces and prints the tables.
#   test/bench/run.sh [BUILD_DIR]
# Environment (defaults in brackets):
#   BENCHES            which to run, in order [cni nft policy datapath api]
#   PODS               cni_bench: pods per plugin [100]
#   POLICY_NAMESPACES  policy_bench: namespaces [100]
#   POLICY_PODS        policy_bench: pods per namespace [100]     (10k pods)
#   POLICY_PER_NS      policy_bench: policies per namespace [10]  (1k policies)
#   POLICY_EVENTS      policy_bench: events per incremental kind [400]
#   DATAPATH_SECONDS   datapath_bench: seconds per measurement [2]
#   DATAPATH_ROUNDS    datapath_bench: interleaved rounds [3]
set -eu
BUILD=${1:-build}
BENCHES=${BENCHES:-cni nft policy datapath api}
PODS=${PODS:-100}
POLICY_NAMESPACES=${POLICY_NAMESPACES:-100}
POLICY_PODS=${POLICY_PODS:-100}
POLICY_PER_NS=${POLICY_PER_NS:-10}
POLICY_EVENTS=${POLICY_EVENTS:-400}
DATAPATH_SECONDS=${DATAPATH_SECONDS:-2}
DATAPATH_ROUNDS=${DATAPATH_ROUNDS:-3}
if [ "$(id -u)" -ne 0 ]; then echo "bench: needs root (network namespaces)" >&2; exit 1; fi
KNIT=$(cd "$(dirname "$BUILD/knit")" && pwd)/knit
first=1
section() {
  [ "$first" -eq 1 ] || echo
  first=0
  echo "== $1 =="
}
for b in $BENCHES; do
  case $b in
    cni)
      section "CNI: knit vs reference plugins (ADD/DEL, $PODS pods)"
      "$BUILD/test/bench/cni_bench" "$KNIT" "$PODS"
      ;;
    nft)
      [ -x "$BUILD/test/bench/nft_bench" ] || continue
      section "nftables engine"
      "$BUILD/test/bench/nft_bench"
      ;;
    policy)
      section "policy engine: full sync vs nft -f, incremental changes, agent memory"
      KNIT_BINARY="$KNIT" POLICY_BENCH_EVENTS="$POLICY_EVENTS" "$BUILD/test/bench/policy_bench" \
        "$POLICY_NAMESPACES" "$POLICY_PODS" "$POLICY_PER_NS"
      ;;
    datapath)
      section "datapath: enforcement cost with 1k policies"
      "$BUILD/test/bench/datapath_bench" "$KNIT" "$DATAPATH_SECONDS" "$DATAPATH_ROUNDS"
      ;;
    api)
      section "agent on the Kubernetes API: first sync and RSS at 10k pods, 1k policies, 100 nodes"
      "$BUILD/test/bench/api_bench" "$KNIT"
      ;;
    *)
      echo "bench: unknown benchmark '$b' (cni, nft, policy, datapath, api)" >&2
      exit 2
      ;;
  esac
done
