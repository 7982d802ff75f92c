#!/bin/sh
# Runs after the netns tests, pass or fail (ctest FIXTURES_CLEANUP): removes any namespace or
# lab a killed test left behind (names carry the test's pid; those of live processes are left
# alone, so concurrent runs don't disturb each other), then fails if anything of knit's is in
# the machine's own namespace. $1: the knit binary (for `knit lab down`).
status=0
# Labs of killed test runs (named t<pid>-<tag> or e2e-<pid>): `knit lab down` stops their
# supervisor and agent and removes their namespaces and run directory.
knit=${1:-}
if [ -n "$knit" ] && [ -x "$knit" ]; then
  for dir in /run/knit/lab/t[0-9]*-* /run/knit/lab/e2e-[0-9]*; do
    [ -d "$dir" ] || continue
    name=$(basename "$dir")
    pid=$(echo "$name" | sed -E 's/^(t|e2e-)([0-9]+).*/\2/')
    [ -d "/proc/$pid" ] && continue
    echo "cleanup: taking down leftover lab $name"
    "$knit" lab down --name "$name" >/dev/null 2>&1
  done
fi
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
