#!/bin/sh
# Runs after the netns tests, pass or fail (ctest FIXTURES_CLEANUP): removes any namespace a
# killed test left behind (names are knit-t-<pid>-...; namespaces of live processes are left
# alone, so concurrent runs don't disturb each other), then fails if anything of knit's is in
# the machine's own namespace.
status=0
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^knit-[tb]-[0-9]+-'); do
  pid=$(echo "$ns" | cut -d- -f3)
  [ -d "/proc/$pid" ] && continue
  echo "cleanup: removing leftover namespace $ns"
  ip netns del "$ns" 2>/dev/null
done
if ip -o link show 2>/dev/null | grep -E ': knit[0-9a-f]' ; then
  echo "cleanup: FAIL: knit links in the machine's own namespace" >&2
  status=1
fi
if nft list tables 2>/dev/null | grep -qw knit; then
  echo "cleanup: FAIL: knit nftables table in the machine's own namespace" >&2
  status=1
fi
if ip route show 2>/dev/null | grep -q 'dev knit'; then
  echo "cleanup: FAIL: knit routes in the machine's own namespace" >&2
  status=1
fi
exit $status
