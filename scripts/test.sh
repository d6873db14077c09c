#!/usr/bin/env bash
# The test command (`make test`, CI's .ci/run): static checks, then pytest against a throwaway
# PostgreSQL cluster and a throwaway Redis that this script starts and always removes again.
#
#   scripts/test.sh [pytest args...]      e.g. scripts/test.sh -k money -x
#
# Exit status: pytest's; non-zero as well when ruff, the migration check or the import contracts
# failed although pytest passed.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO_DIR=$PWD
VENV_BIN=$REPO_DIR/.venv/bin

WORK_DIR=""       # temp dir holding the cluster, sockets, Redis data and logs
PG_BIN=""         # directory of initdb/pg_ctl/psql
PG_DATA=""
REDIS_PID=""
FAILED_CHECKS=()

log() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
is_root() { [[ $(id -u) -eq 0 ]]; }

# apt-get install, refreshing the package lists once if the first try fails (fresh machines
# often have none). Only called as root.
apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "$@" </dev/null >/dev/null \
        || { apt-get update -q </dev/null >/dev/null && apt-get install -y -q "$@" </dev/null >/dev/null; }
}

# The dev virtualenv; make only re-runs pip when pyproject.toml changed.
ensure_venv() {
    make --no-print-directory -s venv
}

ensure_redis() {
    command -v redis-server >/dev/null && return
    if is_root; then
        log "installing redis-server (Debian package)"
        apt_install redis-server || die "could not install redis-server"
    else
        die "redis-server not found: install Debian's redis-server package"
    fi
}

# The browser tests drive Debian's chromium through Playwright; never a downloaded browser.
ensure_chromium() {
    command -v chromium >/dev/null && return
    if is_root; then
        log "installing chromium (Debian package) for the browser tests"
        apt_install chromium || die "could not install chromium"
    else
        die "chromium not found: install Debian's chromium package (the browser tests need it)"
    fi
}

find_pg_bin() {
    local dir
    # Prefer Debian's versioned directories (newest first), then whatever is on PATH.
    for dir in /usr/lib/postgresql/15/bin $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
        [[ -x $dir/initdb && -x $dir/pg_ctl ]] && { PG_BIN=$dir; return 0; }
    done
    if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
        PG_BIN=$(dirname "$(readlink -f "$(command -v initdb)")")
        return 0
    fi
    return 1
}

ensure_postgres() {
    find_pg_bin && return
    if is_root; then
        log "installing postgresql (Debian package)"
        apt_install postgresql || die "could not install postgresql"
        find_pg_bin || die "postgresql installed but initdb was not found"
    else
        die "PostgreSQL's initdb not found: install Debian's postgresql package"
    fi
}

free_port() {
    "$VENV_BIN/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# PostgreSQL refuses to run as root, so as root the cluster belongs to the postgres user.
# Commands run from inside WORK_DIR: the postgres user may not be allowed into the checkout.
as_pg_owner() {
    if is_root; then
        (cd "$WORK_DIR" && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

start_postgres() {
    local port=$1
    PG_DATA=$WORK_DIR/pgdata
    # Local socket: trust (only the owner can reach the private socket dir); TCP: a password,
    # like a real deployment.
    as_pg_owner "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -E UTF8 --locale=C --no-sync \
        --auth-local=trust --auth-host=scram-sha-256 >"$WORK_DIR/initdb.log" 2>&1 \
        || { cat "$WORK_DIR/initdb.log" >&2; die "initdb failed"; }
    # fsync and friends off: the cluster is thrown away, speed matters more than durability.
    as_pg_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$WORK_DIR/postgres.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $WORK_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        start >/dev/null \
        || { cat "$WORK_DIR/postgres.log" >&2; die "PostgreSQL did not start"; }
    # The test user needs CREATEDB: pytest-django creates test_<db>_gw0, _gw1... itself.
    as_pg_owner "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$WORK_DIR" -p "$port" -U postgres -d postgres \
        -c "CREATE ROLE chatcommerce LOGIN CREATEDB PASSWORD 'chatcommerce'" \
        -c "CREATE DATABASE chatcommerce OWNER chatcommerce" >/dev/null \
        || die "could not create the test role and database"
}

start_redis() {
    local port=$1
    # Started directly (not daemonized) so we own its pid; no persistence at all.
    redis-server --port "$port" --bind 127.0.0.1 --dir "$WORK_DIR" --save '' --appendonly no \
        --daemonize no --logfile "$WORK_DIR/redis.log" &
    REDIS_PID=$!
    local _
    for _ in $(seq 100); do
        if "$VENV_BIN/python" - "$port" <<'EOF' 2>/dev/null; then return 0; fi
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=0.5) as s:
    s.sendall(b"PING\r\n")
    sys.exit(0 if s.recv(16).startswith(b"+PONG") else 1)
EOF
        kill -0 "$REDIS_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$WORK_DIR/redis.log" >&2 || true
    die "redis-server did not start"
}

# Runs on every exit (success, failure, Ctrl-C): stop both servers and delete their files.
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ -n $REDIS_PID ]]; then
        kill "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
    fi
    if [[ -n $PG_DATA && -f $PG_DATA/postmaster.pid ]]; then
        as_pg_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    [[ -n $WORK_DIR ]] && rm -rf "$WORK_DIR"
    exit "$status"
}

# Run one static check; remember a failure instead of stopping, so one run shows every problem.
run_check() {
    local name=$1
    shift
    log "$name"
    if ! "$@"; then
        printf 'FAILED: %s (%s)\n' "$name" "$*" >&2
        FAILED_CHECKS+=("$name")
    fi
}

main() {
    ensure_venv
    ensure_redis
    ensure_postgres
    ensure_chromium

    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    if is_root; then
        # /tmp, whatever TMPDIR says: the postgres user must be able to reach the directory.
        # It owns it (cluster, socket), and the directory stays private to that user.
        WORK_DIR=$(mktemp -d /tmp/chatcommerce-test.XXXXXX)
        chown postgres: "$WORK_DIR"
    else
        WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/chatcommerce-test.XXXXXX")
    fi

    local pg_port redis_port
    pg_port=$(free_port)
    redis_port=$(free_port)
    while [[ $redis_port == "$pg_port" ]]; do redis_port=$(free_port); done
    log "throwaway PostgreSQL on 127.0.0.1:$pg_port, Redis on 127.0.0.1:$redis_port"
    start_postgres "$pg_port"
    start_redis "$redis_port"

    export DATABASE_URL="postgres://chatcommerce:chatcommerce@127.0.0.1:$pg_port/chatcommerce"
    export REDIS_URL="redis://127.0.0.1:$redis_port/0"
    export DJANGO_SETTINGS_MODULE=config.settings.test

    run_check "ruff check" "$VENV_BIN/ruff" check .
    run_check "migrations are up to date" "$VENV_BIN/python" manage.py makemigrations --check --dry-run
    run_check "import contracts" "$VENV_BIN/lint-imports"

    log "pytest -n 2 $*"
    local status=0
    "$VENV_BIN/pytest" -n 2 "$@" || status=$?

    if ((${#FAILED_CHECKS[@]})); then
        printf 'FAILED checks: %s\n' "$(IFS=,; echo "${FAILED_CHECKS[*]}")" >&2
        ((status == 0)) && status=1
    fi
    return "$status"
}

main "$@"
