#!/bin/sh
# Installs every Debian package knit's build, tests and benchmarks need. Idempotent: packages
# already present are left alone and apt is not even consulted when nothing is missing.
set -eu

# iptables: the netns tests emulate kube-proxy's Service DNAT in its iptables modes (knit itself
# never runs it).
PACKAGES="
  build-essential cmake pkg-config
  libmnl-dev libnftnl-dev libyaml-dev nlohmann-json3-dev libtoml11-dev libboost-test-dev
  libssl-dev libssl3 openssl
  iproute2 nftables conntrack procps util-linux iptables
  containernetworking-plugins podman runc busybox-static
  hyperfine
"

missing=""
for p in $PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done

if [ -n "$missing" ]; then
  echo "deps: installing$missing"
  if [ "$(id -u)" -ne 0 ]; then
    echo "deps: need root to install packages (run as root or with sudo)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing
else
  echo "deps: all packages present"
fi
