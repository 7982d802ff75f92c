#!/bin/sh
# make demo: the knit lab on its built-in example. Five pods in two namespaces are wired by knit's
# real CNI ADD inside a sandbox node namespace, the policy agent runs on their manifests, and a
# reachability matrix is printed before and after the allow-from-frontend NetworkPolicy is
# dropped into the manifests directory. Everything lives in namespaces the lab creates and
# removes (always, also on failure or Ctrl-C); the machine's own network is never touched.
set -eu
KNIT=$(readlink -f "${1:-build/knit}")
HERE=$(dirname "$(readlink -f "$0")")/demo
[ "$(id -u)" -eq 0 ] || { echo "demo: needs root (network namespaces)" >&2; exit 1; }
[ -x "$KNIT" ] || { echo "demo: $KNIT is not built (make build)" >&2; exit 1; }

NAME=demo-$$
DIR=$(mktemp -d /tmp/knit-demo-XXXXXX)
cleanup() {
  echo
  echo "== 4. knit lab down"
  "$KNIT" lab down --name "$NAME" || true
  rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cp "$HERE/pods.yaml" "$DIR/"
echo "== 1. knit lab up: a node namespace, five pods wired by knit's CNI ADD, the policy agent"
echo "   manifests: $DIR (a copy of lab/examples/demo/pods.yaml)"
echo
"$KNIT" lab up --dir "$DIR" --name "$NAME"

echo
echo "== 2. knit lab probe: who reaches whom on TCP port 80, with no policy"
echo
"$KNIT" lab probe --name "$NAME"

echo
echo "== 3. cp policy/allow-from-frontend.yaml $DIR/ (the agent picks it up by itself)"
echo
sed -n '/^apiVersion/,$p' "$HERE/policy/allow-from-frontend.yaml" | sed 's/^/    /'
cp "$HERE/policy/allow-from-frontend.yaml" "$DIR/"
echo
"$KNIT" lab probe --name "$NAME"
echo
echo "   shop/backend now accepts shop/frontend only. ops/frontend has the same label but lives in"
echo "   another namespace, and a podSelector alone only selects pods of the policy's namespace."
echo "   Everything else is untouched: a policy isolates only the pods it selects."
