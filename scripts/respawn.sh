#!/usr/bin/env bash
# scripts/respawn.sh COMMAND [ARGS...]: run COMMAND, and start it again whenever it exits on its
# own, until this script is told to stop (SIGTERM, SIGINT or SIGHUP), the way docker-compose's
# `restart: unless-stopped` and Celery's own systemd unit (`Restart=always`) keep a worker up.
#
# Why: `make run` runs web, worker and beat under honcho, and honcho stops every process as soon
# as one exits. The Celery worker can exit on its own when Redis goes away while it holds
# unacknowledged tasks ("Unrecoverable error" in kombu's restore of those tasks, see
# docs/adr/0009); without this wrapper one Redis restart would stop the whole demo.
# Procfile.dev runs the worker and beat through it.
#
# Stopping: honcho signals the whole process group, so COMMAND gets the signal itself; it is also
# forwarded (a command started on its own is stopped too), and this script exits with COMMAND's
# status once it has ended. Restarts back off from 1 s to 30 s; a command that keeps failing
# within seconds of starting (a configuration error, not an outage) is given up after
# RESPAWN_MAX_QUICK_FAILURES starts in a row (default 5), with its last status.
set -uo pipefail

[[ $# -gt 0 ]] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }

QUICK_SECONDS=${RESPAWN_QUICK_SECONDS:-10}
MAX_QUICK_FAILURES=${RESPAWN_MAX_QUICK_FAILURES:-5}
NAME="'$*'"

stopping=0
child=""

say() { printf 'respawn: %s\n' "$*" >&2; }

stop() {
    stopping=1
    if [[ -n $child ]]; then
        kill -TERM "$child" 2>/dev/null || true
    fi
}
trap stop TERM INT HUP

# `wait` returns early when a trapped signal arrives: keep waiting until the child has ended.
wait_for_child() {
    local status
    while :; do
        wait "$child"
        status=$?
        kill -0 "$child" 2>/dev/null || return "$status"
    done
}

delay=1
quick_failures=0
while :; do
    started=$SECONDS
    "$@" &
    child=$!
    wait_for_child
    status=$?
    child=""
    ((stopping)) && exit "$status"

    if ((SECONDS - started < QUICK_SECONDS)); then
        ((++quick_failures))
        if ((quick_failures >= MAX_QUICK_FAILURES)); then
            say "$NAME exited with status $status $quick_failures times in a row within ${QUICK_SECONDS} s of starting; giving up"
            exit "$status"
        fi
    else
        quick_failures=0
        delay=1
    fi
    say "$NAME exited with status $status; starting it again in ${delay} s"
    sleep "$delay" &
    child=$!
    wait "$child" 2>/dev/null
    kill "$child" 2>/dev/null
    child=""
    ((stopping)) && exit "$status"
    delay=$((delay * 2 > 30 ? 30 : delay * 2))
done
