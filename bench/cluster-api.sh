#!/usr/bin/env bash
# bench/cluster-api.sh: API create latency and idle memory of `berth server` (SQLite store).
#
#   N=1000 C=4 bench/cluster-api.sh
#
# Starts out/berth server on a free 127.0.0.1 port with a temp data dir, then a Python client
# (stdlib only: http.client over TLS with the admin client certificate, keep-alive connections)
# creates N ConfigMaps: first one at a time (latency of a lone request), then with C concurrent
# clients (latency under load). Prints p50/p90/p99/max in milliseconds and the requests per second,
# and the server's RSS when idle after start and after the load. Every create is a durable write
# (SQLite WAL, synchronous=FULL: one fsync per create).
#   BERTH=PATH   default: out/berth of this checkout
set -euo pipefail
cd "$(dirname "$0")/.."
BERTH=${BERTH:-$PWD/out/berth}
N=${N:-1000}
C=${C:-4}
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BERTH" server --listen 127.0.0.1:$port --data-dir "$dir" >"$dir/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do [ -f "$dir/admin.kubeconfig" ] && (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
sleep 0.5
echo "idle RSS after start: $(awk '/VmRSS/ {print $2/1024 " MiB"}' /proc/$pid/status)"
python3 - "$dir" "$port" "$N" "$C" <<'PY'
import http.client, json, ssl, sys, threading, time
d, port, n, c = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ctx = ssl.create_default_context(cafile=f"{d}/ca.crt")
ctx.load_cert_chain(f"{d}/admin.crt", f"{d}/admin.key")
def conn():
    return http.client.HTTPSConnection("127.0.0.1", port, context=ctx)
def create(h, name):
    body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}})
    t = time.perf_counter()
    h.request("POST", "/api/v1/namespaces/default/configmaps", body, {"Content-Type": "application/json"})
    r = h.getresponse(); r.read()
    dt = time.perf_counter() - t
    if r.status != 201: raise SystemExit(f"create {name}: HTTP {r.status}")
    return dt
def report(label, lat, wall):
    lat = sorted(lat); q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000
    print(f"{label}: n={len(lat)} p50={q(0.50):.2f}ms p90={q(0.90):.2f}ms p99={q(0.99):.2f}ms max={lat[-1]*1000:.2f}ms  {len(lat)/wall:.0f} creates/s")
h = conn()
for i in range(20): create(h, f"warm-{i}")
t0 = time.perf_counter(); lat = [create(h, f"seq-{i}") for i in range(n)]
report("sequential (1 client)", lat, time.perf_counter() - t0)
lat = []; lock = threading.Lock()
def worker(w):
    hh = conn(); mine = [create(hh, f"load-{w}-{i}") for i in range(n // c)]
    with lock: lat.extend(mine)
ts = [threading.Thread(target=worker, args=(w,)) for w in range(c)]
t0 = time.perf_counter(); [t.start() for t in ts]; [t.join() for t in ts]
report(f"under load ({c} clients)", lat, time.perf_counter() - t0)
PY
sleep 1
echo "RSS after load: $(awk '/VmRSS/ {print $2/1024 " MiB"}' /proc/$pid/status)"
