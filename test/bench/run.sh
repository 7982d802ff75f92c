#!/bin/sh
# make bench: builds, then runs every benchmark in throwaway namespaces and prints the tables.
set -eu
BUILD=${1:-build}
PODS=${PODS:-100}
if [ "$(id -u)" -ne 0 ]; then echo "bench: needs root (network namespaces)" >&2; exit 1; fi
echo "== CNI: knit vs reference plugins (ADD/DEL, $PODS pods) =="
"$BUILD/test/bench/cni_bench" "$BUILD/knit" "$PODS"
if [ -x "$BUILD/test/bench/nft_bench" ]; then
  echo
  echo "== nftables engine =="
  "$BUILD/test/bench/nft_bench"
fi
