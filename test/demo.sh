#!/bin/sh
# make demo (until the policy lab lands): a sandbox node namespace, three pods wired by the real
# knit CNI ADD path, and a ping matrix between them over IPv4 and IPv6. Everything lives in
# namespaces this script creates and removes; the machine's own network is never touched.
set -eu
KNIT=$(readlink -f "${1:-build/knit}")
[ "$(id -u)" -eq 0 ] || { echo "demo: needs root (network namespaces)" >&2; exit 1; }
TAG=knit-demo-$$
DATA=/run/$TAG
NODE=$TAG-node
PODS="a b c"

cleanup() {
  for p in $PODS; do ip netns del "$TAG-$p" 2>/dev/null || true; done
  ip netns del "$NODE" 2>/dev/null || true
  rm -rf "$DATA"
}
trap cleanup EXIT INT TERM

CONF='{"cniVersion":"1.1.0","name":"demo","type":"knit","agent":"off","dataDir":"'$DATA'",
  "ipam":{"ranges":[[{"subnet":"10.77.0.0/24"}],[{"subnet":"fd00:77::/64"}]]}}'

echo "== sandbox node $NODE (uplink veth with 10.99.0.1 and fd99::1)"
ip netns add "$NODE"
ip -n "$NODE" link set lo up
ip -n "$NODE" link add up0 type veth peer name up0peer
ip -n "$NODE" link set up0peer up
ip -n "$NODE" link set up0 up
ip -n "$NODE" addr add 10.99.0.1/24 dev up0
ip -n "$NODE" -6 addr add fd99::1/64 dev up0 nodad

for p in $PODS; do
  ip netns add "$TAG-$p"
  out=$(echo "$CONF" | ip netns exec "$NODE" env CNI_COMMAND=ADD CNI_CONTAINERID="demo-$p" \
        CNI_NETNS="/run/netns/$TAG-$p" CNI_IFNAME=eth0 CNI_PATH=/nonexistent "$KNIT")
  v4=$(echo "$out" | sed -n 's/.*"address":"\(10\.[0-9.]*\)\/32".*/\1/p')
  v6=$(echo "$out" | sed -n 's/.*"address":"\(fd00:77:[0-9a-f:]*\)\/128".*/\1/p')
  eval "V4_$p=$v4; V6_$p=$v6"
  printf 'pod %s: ADD -> %s, %s\n' "$p" "$v4" "$v6"
done

ping_ok() {  # netns addr
  if echo "$2" | grep -q :; then f=-6; else f=; fi
  ip netns exec "$1" /bin/busybox ping $f -c 1 -W 1 "$2" >/dev/null 2>&1
}

for fam in 4 6; do
  echo
  echo "== ping matrix, IPv$fam (row = from, column = to)"
  printf '%-6s' ""; for d in $PODS; do printf '%-6s' "$d"; done; printf '%-6s\n' "node"
  for s in node $PODS; do
    ns=$TAG-$s; [ "$s" = node ] && ns=$NODE
    printf '%-6s' "$s"
    for d in $PODS; do
      eval "addr=\$V${fam}_$d"
      if [ "$s" = "$d" ]; then printf '%-6s' "-"; elif ping_ok "$ns" "$addr"; then printf '%-6s' "ok"; else printf '%-6s' "FAIL"; fi
    done
    if [ "$s" = node ]; then printf '%-6s\n' "-"; else
      [ $fam = 4 ] && addr=10.99.0.1 || addr=fd99::1
      if ping_ok "$ns" "$addr"; then printf '%-6s\n' "ok"; else printf '%-6s\n' "FAIL"; fi
    fi
  done
done

echo
echo "== DEL every pod (addresses released, routes gone; the links follow in the background)"
for p in $PODS; do
  echo "$CONF" | ip netns exec "$NODE" env CNI_COMMAND=DEL CNI_CONTAINERID="demo-$p" \
    CNI_NETNS="/run/netns/$TAG-$p" CNI_IFNAME=eth0 CNI_PATH=/nonexistent "$KNIT"
done
echo "node routes to pods left: $(ip -n "$NODE" route | grep -c 10.77.0. || true)"
