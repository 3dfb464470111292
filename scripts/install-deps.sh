#!/bin/sh
# Installs what Berth's build, tests and demo need on Debian 12 (idempotent, quiet when done).
set -e
PKGS="libsqlite3-0 etcd-server runc crun podman skopeo umoci docker-registry apache2-utils busybox-static uidmap iproute2 iptables containernetworking-plugins util-linux jq python3-kubernetes hyperfine strace zstd gcc libc6-dev make docker.io docker-compose"
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
    echo "installing:$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
command -v dotnet >/dev/null || { echo "dotnet SDK 10 is required (not found on PATH)" >&2; exit 1; }
