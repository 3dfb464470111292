#!/bin/bash
# Runs every test project (unit, real-kernel and end-to-end) against the freshly built binary and
# prints one closing line: "N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/.."
export BERTH_RUNC="$PWD/out/berth-runc"
export BERTH_REPO="$PWD"
passed=0; failed=0; skipped=0; rc=0
log=$(mktemp)
for proj in tests/*/*.csproj; do
    echo "== $proj"
    dotnet test "$proj" -c Release --nologo 2>&1 | tee "$log" | grep -vE "^\s*$|Build succeeded|Determining projects|up-to-date|-> " 
    status=${PIPESTATUS[0]}
    line=$(grep -E "^(Passed|Failed)!" "$log" | tail -1)
    p=$(echo "$line" | sed -nE 's/.*Passed: *([0-9]+).*/\1/p'); f=$(echo "$line" | sed -nE 's/.*Failed: *([0-9]+).*/\1/p'); s=$(echo "$line" | sed -nE 's/.*Skipped: *([0-9]+).*/\1/p')
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${s:-0}))
    if [ "$status" -ne 0 ]; then rc=1; [ -z "$line" ] && failed=$((failed + 1)); fi
done
rm -f "$log"
echo "$passed passed, $failed failed, $skipped skipped"
exit $rc
