#!/usr/bin/env bash
# `make run`: the whole service on this machine, with the sandbox standing in for Messenger and
# Stripe. Starts a local Redis when REDIS_URL is not set, prepares the database (migrations, the
# demo shop, the emulator's page and shoppers), then runs web, worker and beat (Procfile.dev)
# under honcho. Once the web process answers, it pushes the Messenger Profile (greeting, Get
# Started, menu) to the emulator in the background. Ctrl-C stops all of them, and that Redis too.
#
# Configuration: environment variables, then .env (never overriding what is already set).
set -euo pipefail

cd "$(dirname "$0")/.."
REPO_DIR=$PWD
RUN_DIR=$REPO_DIR/.run
REDIS_PID=""
HONCHO_PID=""
PROFILE_PID=""

log() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
is_root() { [[ $(id -u) -eq 0 ]]; }

# KEY=VALUE lines of .env become environment variables unless already set (like config/env.py).
load_dotenv() {
    [[ -f .env ]] || return 0
    local line key value
    while IFS= read -r line || [[ -n $line ]]; do
        line=${line#"${line%%[![:space:]]*}"}           # trim leading blanks
        [[ -z $line || $line == \#* ]] && continue
        line=${line#export }
        [[ $line == *=* ]] || continue
        key=${line%%=*}
        value=${line#*=}
        [[ $key =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
        # Strip one pair of surrounding quotes.
        if [[ $value =~ ^\"(.*)\"$ || $value =~ ^\'(.*)\'$ ]]; then
            value=${BASH_REMATCH[1]}
        fi
        [[ -n ${!key+set} ]] || export "$key=$value"
    done <.env
}

# SO_REUSEADDR as redis-server itself uses it: leftover TIME_WAIT connections don't count.
port_is_free() {
    python -c 'import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)' "$1"
}

free_port() {
    python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

redis_answers() {
    python -c 'import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=0.5) as s:
    s.sendall(b"PING\r\n")
    sys.exit(0 if s.recv(16).startswith(b"+PONG") else 1)' "$1" 2>/dev/null
}

ensure_redis_server() {
    command -v redis-server >/dev/null && return
    if is_root; then
        log "installing redis-server (Debian package)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q redis-server </dev/null >/dev/null \
            || { apt-get update -q </dev/null >/dev/null && apt-get install -y -q redis-server </dev/null >/dev/null; } \
            || die "could not install redis-server"
    else
        echo "install Debian's redis-server or set REDIS_URL" >&2
        exit 1
    fi
}

# A Redis of our own, in the background, data in .run/redis. Stopped by cleanup(), after
# honcho: in its own session (setsid) so Ctrl-C does not stop it while the worker still needs
# it; its pid file tells cleanup() what to stop.
start_redis() {
    ensure_redis_server
    local port=6379
    port_is_free "$port" || port=$(free_port)
    local pidfile=$RUN_DIR/redis/redis.pid
    mkdir -p "$RUN_DIR/redis"
    rm -f "$pidfile"
    setsid redis-server --port "$port" --bind 127.0.0.1 --dir "$RUN_DIR/redis" --daemonize no \
        --pidfile "$pidfile" --logfile "$RUN_DIR/redis/redis.log" &
    REDIS_PID=$!
    local tries=0
    until redis_answers "$port"; do
        kill -0 "$REDIS_PID" 2>/dev/null && ((++tries < 100)) \
            || die "redis-server did not start, see .run/redis/redis.log"
        sleep 0.1
    done
    [[ -s $pidfile ]] && REDIS_PID=$(<"$pidfile")
    export REDIS_URL="redis://127.0.0.1:$port/0"
    log "local Redis on 127.0.0.1:$port (pid $REDIS_PID, data in .run/redis)"
}

# Runs on every exit: the profile push, honcho (it stops web, worker and beat), then our Redis.
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ -n $PROFILE_PID ]] && kill -0 "$PROFILE_PID" 2>/dev/null; then
        kill "$PROFILE_PID" 2>/dev/null || true
    fi
    if [[ -n $HONCHO_PID ]] && kill -0 "$HONCHO_PID" 2>/dev/null; then
        kill -TERM "$HONCHO_PID" 2>/dev/null || true
        wait "$HONCHO_PID" 2>/dev/null || true
    fi
    if [[ -n $REDIS_PID ]] && kill -0 "$REDIS_PID" 2>/dev/null; then
        log "stopping local Redis (pid $REDIS_PID)"
        kill "$REDIS_PID" 2>/dev/null || true
        local _
        for _ in $(seq 50); do kill -0 "$REDIS_PID" 2>/dev/null || break; sleep 0.1; done
    fi
    exit "$status"
}

prepare_database() {
    python manage.py migrate --noinput
    python manage.py seed_demo
    # The emulator's side of the demo page (same page id and token as seed_demo's) and its two
    # demo shoppers, English and Arabic.
    python manage.py sandbox_seed
    python manage.py collectstatic --noinput -v0
}

web_answers() {
    python -c 'import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception:
    sys.exit(1)' "$1" 2>/dev/null
}

# In the background: wait for the web process, then push the Messenger Profile to the emulator
# (greeting on the welcome screen, Get Started, persistent menu). Not a Procfile entry: honcho
# stops everything when one of its processes exits. Output in .run/messenger-profile.log.
push_messenger_profile() {
    local url=http://127.0.0.1:$PORT/healthz/ logfile=$RUN_DIR/messenger-profile.log
    (
        for _ in $(seq 120); do
            if web_answers "$url"; then
                if python manage.py messenger_profile sync >"$logfile" 2>&1; then
                    log "Messenger Profile pushed to the emulator (greeting and Get Started)"
                else
                    log "could not push the Messenger Profile, see .run/messenger-profile.log"
                fi
                exit 0
            fi
            sleep 0.5
        done
        log "the web process did not answer $url; Messenger Profile not pushed"
    ) &
    PROFILE_PID=$!
}

print_urls() {
    cat <<EOF

  Open $PUBLIC_BASE_URL/sandbox/ to shop: the Messenger emulator. Pick a shopper, tap Get
  Started, buy something, and pay with the test card 4242 4242 4242 4242 (any future date,
  any CVC); 4000 0000 0000 0002 is declined.

  Merchant admin             $PUBLIC_BASE_URL/admin/      (logins printed by seed_demo above)
  Operators dashboard        $PUBLIC_BASE_URL/dashboard/
  API docs                   $PUBLIC_BASE_URL/api/docs/

  Ctrl-C stops web, worker and beat$( [[ -n $REDIS_PID ]] && echo ", and the local Redis").

EOF
}

main() {
    make --no-print-directory -s venv
    export PATH="$REPO_DIR/.venv/bin:$PATH"
    load_dotenv

    export PORT=${PORT:-8000}
    export PUBLIC_BASE_URL=${PUBLIC_BASE_URL:-http://127.0.0.1:$PORT}
    export DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-config.settings.dev}
    export GRAPH_API_BASE=${GRAPH_API_BASE:-$PUBLIC_BASE_URL/sandbox/graph}
    export STRIPE_API_BASE=${STRIPE_API_BASE:-$PUBLIC_BASE_URL/sandbox/stripe}
    mkdir -p "$RUN_DIR"
    port_is_free "$PORT" || die "port $PORT is in use: stop what uses it, or run PORT=8001 make run"

    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    [[ -n ${REDIS_URL:-} ]] || start_redis

    prepare_database
    print_urls
    push_messenger_profile
    # Not exec: this shell stays to stop its Redis once honcho has stopped the others. honcho
    # runs in the background so that a SIGTERM sent to this script alone interrupts `wait` at
    # once (a foreground child would delay the trap) and is forwarded by cleanup().
    # --env /dev/null: .env was already applied above, with the right precedence.
    honcho start -f Procfile.dev --env /dev/null --port "$PORT" &
    HONCHO_PID=$!
    wait "$HONCHO_PID"
}

main "$@"
