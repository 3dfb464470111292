# Sourced by the image benchmarks: start_registry WORK IMAGE starts Debian's docker-registry on a
# free 127.0.0.1 port with its storage under WORK, pushes the OCI layout IMAGE (path:tag) to it as
# bench/debian:bench, and sets $reg (its pid, for the caller's cleanup) and $ref (the reference).
start_registry() {
    local work=$1 image=$2 port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    cat > "$work/registry.yml" <<YML
version: 0.1
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
log:
  level: error
YML
    docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
    reg=$!
    for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
    ref=127.0.0.1:$port/bench/debian:bench
    skopeo copy -q --dest-tls-verify=false "oci:$image" "docker://$ref"
}
