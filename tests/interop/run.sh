#!/usr/bin/env bash
# run.sh - The interop test: a nats-server and the five built services in a temporary
# directory, shipping gated on the participant "interop", then participant.js against them.
#
# Usage: run.sh BUILD_DIR SOURCE_DIR NATS_SERVER
# Exits 0 on success, 1 on failure, 77 (CTest's SKIP_RETURN_CODE) when node or the
# npm packages are not there. It depends only on the built saga-* executables and
# their environment variables (SAGA_NATS_URL, SAGA_DATA_DIR, SAGA_GATES, SAGA_VETOERS,
# ...). The broker is unauthenticated here, as the tests' brokers are unless they ask.
set -uo pipefail

SKIP=77
READY_MS=20000
STOP_GRACE_S=30
PORT_ATTEMPTS=5

build="${1:?usage: run.sh BUILD_DIR SOURCE_DIR NATS_SERVER}"
src="${2:?usage: run.sh BUILD_DIR SOURCE_DIR NATS_SERVER}"
nats_server="${3:?usage: run.sh BUILD_DIR SOURCE_DIR NATS_SERVER}"
here="$src/tests/interop"

if ! command -v node >/dev/null 2>&1; then
    echo "interop: SKIP: node is not installed (deploy/setup installs nodejs and npm)"
    exit $SKIP
fi
if [[ ! -d "$here/node_modules/nats" || ! -d "$here/node_modules/protobufjs" ]]; then
    # deploy/setup runs npm ci; try once here too, and skip (not fail) when offline.
    if ! command -v npm >/dev/null 2>&1 ||
        ! (cd "$here" && npm ci --no-audit --no-fund >/dev/null 2>&1); then
        echo "interop: SKIP: $here/node_modules is missing and npm ci failed (run deploy/setup)"
        exit $SKIP
    fi
fi

# The directory name matches the leak check of tools/test (nats-server -c .../saga-test-*).
tmp="$(mktemp -d "${TMPDIR:-/tmp}/saga-test-interop.XXXXXX")"
pids=()
server_pid=""

# Stops the services (SIGTERM, then SIGKILL after a grace period), then the server.
stop_pid() {
    local pid="$1"
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq $((STOP_GRACE_S * 10))); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    for pid in "${pids[@]}"; do
        stop_pid "$pid"
    done
    [[ -n "$server_pid" ]] && stop_pid "$server_pid"
    if [[ $rc -ne 0 && $rc -ne $SKIP ]]; then
        for f in "$tmp"/*.log; do
            [[ -f "$f" ]] || continue
            echo "---- tail of $(basename "$f")"
            tail -n 30 "$f"
        done
    fi
    rm -rf "$tmp"
    exit $rc
}
trap cleanup EXIT
trap 'exit 1' INT TERM

free_port() {
    node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# A port is only free until someone takes it: try fresh ones until the server says it is ready.
port=""
for _ in $(seq $PORT_ATTEMPTS); do
    p="$(free_port)"
    mkdir -p "$tmp/js"
    cat >"$tmp/nats.conf" <<EOF
listen: 127.0.0.1:$p
jetstream { store_dir: "$tmp/js" }
EOF
    : >"$tmp/nats.log"
    "$nats_server" -c "$tmp/nats.conf" >>"$tmp/nats.log" 2>&1 &
    server_pid=$!
    for _ in $(seq $((READY_MS / 100))); do
        grep -q "Server is ready" "$tmp/nats.log" && break
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    if grep -q "Server is ready" "$tmp/nats.log"; then
        port="$p"
        break
    fi
    stop_pid "$server_pid"
    server_pid=""
done
if [[ -z "$port" ]]; then
    echo "interop: FAIL: nats-server did not start"
    exit 1
fi
url="nats://127.0.0.1:$port"

for name in order payment inventory shipping notification; do
    env=(SAGA_NATS_URL="$url" SAGA_DATA_DIR="$tmp/data/$name" NOTIF_SPOOL_DIR="$tmp/mail"
        SAGA_ACK_WAIT_MS=2000 SAGA_RETRY_BASE_MS=50)
    # The participant's clearance gates shipping: the extension contract under test.
    [[ "$name" == shipping ]] && env+=(SAGA_GATES=interop)
    # Its vetoes count: the order service hears vetoes only from participants it is
    # configured with (docs/security.md).
    [[ "$name" == order ]] && env+=(SAGA_VETOERS=interop)
    env "${env[@]}" "$build/services/saga-$name" >"$tmp/$name.log" 2>&1 &
    pids+=($!)
done

# The participant waits for every service to answer saga.ctl.<svc>.stats itself.
SAGA_NATS_URL="$url" SAGA_SCHEMAS="$src/schemas" INTEROP_STATE_DIR="$tmp" \
    node "$here/participant.js" 2>&1 | tee "$tmp/participant.log"
exit "${PIPESTATUS[0]}"
