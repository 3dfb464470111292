#!/usr/bin/env bash
# bench/startup-compare.sh: start-up time of two berth binaries as the runtime (berth-runc), e.g.
# before and after a change that links more code in (ASP.NET Core for the API server).
#
#   BASE=/tmp/old/berth N=300 bench/startup-compare.sh
#
# hyperfine, interleaved by running both commands in one invocation: `berth-runc --version` and
# `berth-runc state x` (a missing container: parse, state-dir lookup, one-line error, exit 1).
#   BASE=PATH  the older binary (required); NEW=PATH default out/berth of this checkout; N=200 runs
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BASE:?set BASE to the binary to compare against}"
NEW=${NEW:-$PWD/out/berth}
N=${N:-200}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/base" "$dir/new" "$dir/root"
cp "$BASE" "$dir/base/berth"; ln -s berth "$dir/base/berth-runc"
cp "$NEW" "$dir/new/berth"; ln -s berth "$dir/new/berth-runc"
ls -l "$dir/base/berth" "$dir/new/berth" | awk '{print $5, $NF}'
hyperfine -N --warmup 20 --runs "$N" \
    "$dir/base/berth-runc --version" "$dir/new/berth-runc --version"
hyperfine -N --warmup 20 --runs "$N" -i \
    "$dir/base/berth-runc --root $dir/root state x" "$dir/new/berth-runc --root $dir/root state x"
