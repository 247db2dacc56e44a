#!/usr/bin/env bash
# A throwaway PostgreSQL for tests: Debian's PostgreSQL 15, its data in DIR, listening on a
# free loopback port and on a unix socket inside DIR, trusting every local connection (it
# never listens beyond 127.0.0.1). Speed over durability: fsync, full-page writes and
# synchronous commit are off, since the data dies with the test.
#
#   pg-test.sh start DIR [OWNER_PID]  initdb when DIR is empty, start the server in the
#                                     background, wait until it accepts connections, print
#                                     its libpq URI on stdout. When OWNER_PID is given, a
#                                     watcher stops the server as soon as that process is
#                                     gone, however it ended (a killed test leaves nothing).
#                                     A second start on the same DIR reuses its port.
#   pg-test.sh stop DIR               stop it (immediate shutdown) and wait for the exit
#   pg-test.sh run DIR                initdb when needed, print the URI, then become the
#                                     postgres server in the foreground (exec), so the caller
#                                     can track it as its own child; standard input is
#                                     watched and the server is killed when it closes, so
#                                     even a caller killed with SIGKILL leaves nothing behind
#
# PG_TEST_SHARED_BUFFERS (default 32MB, as a dozen test servers run at once) sets the server's
# shared_buffers; bench-usage gives its own server 1GB.
#
# initdb and postgres refuse to run as root: as root the server runs as `nobody` (DIR is
# given to it); otherwise as the calling user.
set -euo pipefail

usage() { echo "usage: pg-test.sh start DIR [OWNER_PID] | stop DIR | run DIR" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1 dir=$2

bindir=${PG_BINDIR:-}
if [ -z "$bindir" ]; then
  for v in 15 16 17; do
    if [ -x "/usr/lib/postgresql/$v/bin/postgres" ]; then bindir=/usr/lib/postgresql/$v/bin; break; fi
  done
fi
[ -n "$bindir" ] || { echo "pg-test.sh: PostgreSQL is not installed (scripts/deps.sh installs it)" >&2; exit 1; }

# The command prefix that drops root (empty when not root).
owner_prefix=()
if [ "$(id -u)" -eq 0 ]; then owner_prefix=(setpriv --reuid=nobody --regid=nogroup --clear-groups --); fi
as_owner() { "${owner_prefix[@]}" "$@"; }

pg_user=gatehouse

init() {
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then chown nobody:nogroup "$dir"; fi
  chmod 700 "$dir"
  [ -f "$dir/data/PG_VERSION" ] && return 0
  as_owner "$bindir/initdb" -D "$dir/data" -U "$pg_user" --auth=trust --encoding=UTF8 \
    --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; echo "pg-test.sh: initdb failed" >&2; exit 1; }
}

# A port nobody listens on now (the server itself proves it free: a start that cannot bind
# is retried on another).
pick_port() {
  if [ -f "$dir/port" ]; then cat "$dir/port"; return; fi
  echo $((20000 + RANDOM % 30000))
}

server_args() {
  echo -D "$dir/data" -p "$1" -c listen_addresses=127.0.0.1 \
    -c unix_socket_directories="$dir" -c fsync=off -c full_page_writes=off \
    -c synchronous_commit=off -c max_connections=100 -c shared_buffers=${PG_TEST_SHARED_BUFFERS:-32MB} \
    -c log_min_messages=warning -c log_connections=off
}

url() { echo "postgresql://$pg_user@127.0.0.1:$1/postgres"; }

case "$cmd" in
start)
  owner=${3:-}
  if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
    echo "pg-test.sh: a server already runs in $dir (pid $(cat "$dir/pid"))" >&2; exit 1
  fi
  init
  for attempt in 1 2 3 4 5 6 7 8; do
    port=$(pick_port)
    # shellcheck disable=SC2046
    "${owner_prefix[@]}" setsid "$bindir/postgres" $(server_args "$port") >>"$dir/server.log" 2>&1 </dev/null &
    pid=$!
    ready=0
    for _ in $(seq 1 300); do
      if ! kill -0 "$pid" 2>/dev/null; then break; fi
      if "$bindir/pg_isready" -q -h "$dir" -p "$port" -U "$pg_user" -d postgres; then ready=1; break; fi
      sleep 0.1
    done
    if [ "$ready" -eq 1 ]; then
      echo "$port" >"$dir/port"
      echo "$pid" >"$dir/pid"
      if [ -n "$owner" ]; then
        # The watcher outlives this script (setsid, no terminal) and ends with the server.
        setsid bash -c 'while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 0.5; done
                        kill -QUIT "$2" 2>/dev/null || true' watcher "$owner" "$pid" \
          </dev/null >/dev/null 2>&1 &
      fi
      url "$port"
      exit 0
    fi
    kill -QUIT "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if [ -f "$dir/port" ]; then break; fi # a fixed port: no other to try
  done
  tail -20 "$dir/server.log" >&2
  echo "pg-test.sh: the server did not start" >&2
  exit 1
  ;;
stop)
  [ -f "$dir/pid" ] || exit 0
  pid=$(cat "$dir/pid")
  kill -QUIT "$pid" 2>/dev/null || true
  for _ in $(seq 1 600); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
  rm -f "$dir/pid"
  ;;
run)
  init
  port=$(pick_port)
  echo "$port" >"$dir/port"
  url "$port"
  # The watcher holds standard input: when the caller closes it or dies, the server (this
  # process, after exec) is killed. It checks that the pid is still the server first.
  # (A background job's standard input would be /dev/null without the explicit redirection.)
  self=$$
  exec 3<&0
  (
    while read -r _; do :; done
    if grep -q postgres "/proc/$self/cmdline" 2>/dev/null; then kill -QUIT "$self" 2>/dev/null || true; fi
  ) <&3 &
  exec 3<&-
  # shellcheck disable=SC2046
  exec "${owner_prefix[@]}" "$bindir/postgres" $(server_args "$port") -c log_min_messages=info
  ;;
*) usage ;;
esac
