#!/usr/bin/env bash
# Run a command beside a throwaway PostgreSQL server on loopback, with REWARDLAB_TEST_POSTGRES_URL set,
# so the annotation store's tests run on PostgreSQL as well as SQLite (`make test` uses it).
# Where PostgreSQL is absent and cannot be installed (not root, no apt-get), the command runs alone and
# those tests skip.
set -u
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$pgbin" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get install -y -q postgresql >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q postgresql >/dev/null; }
  pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
fi
if [ -z "$pgbin" ] || ! id postgres >/dev/null 2>&1; then
  echo "with-postgres: no PostgreSQL server here; running without it"
  exec "$@"
fi
dir=$(mktemp -d /tmp/rewardlab-pg.XXXXXX)
port=$(( 20000 + RANDOM % 20000 ))
chown postgres "$dir"
as_pg() { if [ "$(id -un)" = postgres ]; then bash -c "$1"; else su postgres -s /bin/bash -c "$1"; fi; }
stop() { as_pg "$pgbin/pg_ctl -D $dir/data -m fast stop" >/dev/null 2>&1; rm -rf "$dir"; }
trap stop EXIT
as_pg "$pgbin/initdb -D $dir/data -A trust -U postgres" >/dev/null &&
as_pg "$pgbin/pg_ctl -D $dir/data -w -o '-p $port -k $dir -c listen_addresses=127.0.0.1' -l $dir/log start" >/dev/null &&
as_pg "$pgbin/createdb -h 127.0.0.1 -p $port -U postgres rewardlab_test" || {
  echo "with-postgres: could not start PostgreSQL (see $dir/log); running without it"; cat "$dir/log" 2>/dev/null | tail -5
  "$@"; exit $?
}
echo "with-postgres: PostgreSQL on 127.0.0.1:$port"
REWARDLAB_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$port/rewardlab_test" "$@"
