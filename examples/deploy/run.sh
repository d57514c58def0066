#!/usr/bin/env bash
# Two ferryllm instances behind HAProxy sharing one redis-server, all on loopback: start them,
# send load through the balancer, show the shared limit holding (20 a minute for the fleet,
# however HAProxy spreads the requests), stop everything by PID.
#
#   examples/deploy/run.sh [REQUESTS]        # needs redis-server and haproxy (Debian packages)
set -euo pipefail
cd "$(dirname "$0")/../.."
here=examples/deploy
requests=${1:-60}
python=${PYTHON:-python3}
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() {  # URL: up to 10 s
    for _ in $(seq 100); do
        if "$python" -c "import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)" "$1" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "error: $1 did not come up" >&2; return 1
}

redis_port=$(free_port); mock_port=$(free_port)
export LB_PORT=$(free_port) FERRY_1_PORT=$(free_port) FERRY_2_PORT=$(free_port)
export FERRYLLM_REDIS_URL="redis://127.0.0.1:$redis_port/0"
export TEAM_A_KEY="team-a-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"

redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
    --loglevel warning >"$work/redis.log" 2>&1 &
pids+=($!)
"$python" -m benchmarks.mock_upstream --port "$mock_port" --protocol openai --chunks 4 \
    >"$work/mock.log" 2>&1 &
pids+=($!)
sed "s/127.0.0.1:3199/127.0.0.1:$mock_port/" "$here/ferryllm.toml" >"$work/ferryllm.toml"
for port in "$FERRY_1_PORT" "$FERRY_2_PORT"; do
    "$python" -m ferryllm serve -c "$work/ferryllm.toml" --listen "127.0.0.1:$port" \
        >"$work/ferryllm-$port.log" 2>&1 &
    pids+=($!)
done
haproxy -f "$here/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$FERRY_1_PORT/health"
wait_for "http://127.0.0.1:$FERRY_2_PORT/health"
wait_for "http://127.0.0.1:$LB_PORT/health"
sleep 1.5  # HAProxy's first health checks mark both servers up

echo "redis 127.0.0.1:$redis_port; ferryllm one 127.0.0.1:$FERRY_1_PORT, two 127.0.0.1:$FERRY_2_PORT; haproxy 127.0.0.1:$LB_PORT"
"$python" "$here/load.py" --url "http://127.0.0.1:$LB_PORT" --key "$TEAM_A_KEY" --requests "$requests"
echo "shared limit: rate_limit_per_minute = 20 for the fleet"
for port in "$FERRY_1_PORT" "$FERRY_2_PORT"; do  # a slow Redis (> timeout_ms) shows up here
    "$python" -c "import sys,urllib.request; print(''.join(l for l in urllib.request.urlopen(sys.argv[1]).read().decode().splitlines(True) if l.startswith(('ferryllm_shared_state_up', 'ferryllm_shared_state_failures_total', 'ferryllm_shared_state_local_admissions_total'))), end='')" "http://127.0.0.1:$port/metrics" | sed "s/^/  127.0.0.1:$port /"
done
echo "Redis keys (no client key, no prompt):"
redis-cli -p "$redis_port" --scan | sort | sed 's/^/  /'
