#!/usr/bin/env bash
# bench/quota-create-cpu.sh: the server CPU (user+sys, from /proc/PID/stat) that N pod creates cost through
# the API (one keep-alive client, scheduler and controllers off), after 50 warm-up creates. Load-independent
# enough to compare binaries side by side on a busy machine (the admission hooks' early-out when a namespace
# has no LimitRange or ResourceQuota; the cost of the quota charge with QUOTA=1, which creates a
# ResourceQuota {pods, requests.cpu} in the namespace first).
#   bench/quota-create-cpu.sh BERTH N      e.g. bench/quota-create-cpu.sh out/berth 1500
set -euo pipefail
BERTH=$1; N=$2
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BERTH" server --listen 127.0.0.1:$port --data-dir "$dir" --disable-scheduler --disable-controllers >"$dir/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 200); do [ -f "$dir/admin.kubeconfig" ] && (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
sleep 1
cpu() { awk '{print ($14+$15)/100}' /proc/$pid/stat; }
creates() { python3 - "$dir" "$port" "$1" "$2" <<'PY'
import http.client, json, ssl, sys
d, port, n, tag = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
ctx = ssl.create_default_context(cafile=f"{d}/ca.crt"); ctx.load_cert_chain(f"{d}/admin.crt", f"{d}/admin.key")
h = http.client.HTTPSConnection("127.0.0.1", port, context=ctx)
for i in range(n):
    body = json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"{tag}{i}"}, "spec": {"containers": [{"name": "c", "image": "nginx:1", "resources": {"requests": {"cpu": "100m"}}}]}})
    h.request("POST", "/api/v1/namespaces/default/pods", body, {"Content-Type": "application/json"}); r = h.getresponse(); r.read()
    if r.status != 201: raise SystemExit(f"HTTP {r.status}")
PY
}
creates 50 warm
if [ -n "${QUOTA:-}" ]; then python3 - "$dir" "$port" <<'PY'
import http.client, json, ssl, sys
d, port = sys.argv[1], int(sys.argv[2])
ctx = ssl.create_default_context(cafile=f"{d}/ca.crt"); ctx.load_cert_chain(f"{d}/admin.crt", f"{d}/admin.key")
h = http.client.HTTPSConnection("127.0.0.1", port, context=ctx)
body = json.dumps({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"}, "spec": {"hard": {"pods": "100000", "requests.cpu": "100000"}}})
h.request("POST", "/api/v1/namespaces/default/resourcequotas", body, {"Content-Type": "application/json"}); r = h.getresponse(); r.read()
if r.status != 201: raise SystemExit(f"HTTP {r.status}")
PY
sleep 1; fi
before=$(cpu)
creates "$N" p
after=$(cpu)
echo "$BERTH${QUOTA:+ (quota)}: server CPU for $N pod creates: $(echo "$after - $before" | bc) s"
