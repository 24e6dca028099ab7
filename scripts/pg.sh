#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests and benchmarks, on 127.0.0.1 only.
#
#   eval "$(scripts/pg.sh start)"   # installs the Debian package when missing, starts a cluster
#                                   # in a temp dir on a free port, prints the exports:
#                                   # REDLINE_TEST_DSN (a DSN for tests) and REDLINE_PG_DIR
#   scripts/pg.sh env  [DIR]        # the same exports for the cluster in DIR (default $REDLINE_PG_DIR)
#   scripts/pg.sh stop [DIR]        # stops the cluster in DIR and removes DIR
#
# Every message goes to stderr; stdout carries only the exports, for eval. The cluster keeps
# PostgreSQL's durable defaults (fsync on, synchronous_commit on): the figures measured on it
# are honest. Authentication is trust, on the loopback address and a socket in DIR only.
set -euo pipefail

PG_PORT_FIRST=${PG_PORT_FIRST:-55432}
PG_PORT_TRIES=20

say() { echo "pg.sh: $*" >&2; }

# as_pg runs a command as the postgres user when we are root (PostgreSQL refuses to run as root).
as_pg() {
	if [ "$(id -u)" = 0 ]; then
		su postgres -s /bin/sh -c "$*"
	else
		sh -c "$*"
	fi
}

pgbin() {
	ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}

install() {
	if [ -n "$(pgbin)" ]; then
		return
	fi
	say "installing postgresql (Debian package)"
	apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
}

exports() {
	local dir=$1 port
	port=$(cat "$dir/port")
	echo "export REDLINE_PG_DIR='$dir'"
	echo "export REDLINE_TEST_DSN='postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable'"
}

# port_taken says whether something listens on 127.0.0.1:$1.
port_taken() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start() {
	install
	local bin dir port
	bin=$(pgbin)
	dir=$(mktemp -d /tmp/redline-pg.XXXXXX)
	chmod 755 "$dir"
	mkdir "$dir/data"
	if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$dir/data"; fi
	as_pg "$bin/initdb -D $dir/data -U postgres -A trust -E UTF8 --no-locale" >/dev/null
	for ((i = 0; i < PG_PORT_TRIES; i++)); do
		port=$((PG_PORT_FIRST + i))
		if port_taken "$port"; then
			continue
		fi
		if as_pg "$bin/pg_ctl -D $dir/data -l $dir/data/server.log -w -t 60 -o \"-c listen_addresses=127.0.0.1 -p $port -k $dir/data -c max_connections=300\" start" >/dev/null; then
			echo "$port" >"$dir/port"
			say "PostgreSQL $(basename "$(dirname "$bin")") on 127.0.0.1:$port, data in $dir"
			exports "$dir"
			return
		fi
	done
	say "could not start PostgreSQL on ports $PG_PORT_FIRST..$((PG_PORT_FIRST + PG_PORT_TRIES - 1)) (see $dir/data/server.log)"
	rm -rf "$dir"
	exit 1
}

stop() {
	local dir=${1:-${REDLINE_PG_DIR:-}}
	if [ -z "$dir" ] || [ ! -d "$dir" ]; then
		say "stop: no cluster dir (pass DIR or set REDLINE_PG_DIR)"
		exit 2
	fi
	if [ -f "$dir/data/postmaster.pid" ]; then
		as_pg "$(pgbin)/pg_ctl -D $dir/data -m fast -w stop" >/dev/null || true
	fi
	rm -rf "$dir"
	say "stopped and removed $dir"
}

case "${1:-}" in
start) start ;;
stop) stop "${2:-}" ;;
env)
	dir=${2:-${REDLINE_PG_DIR:-}}
	[ -n "$dir" ] && [ -f "$dir/port" ] || { say "env: no running cluster (pass DIR or set REDLINE_PG_DIR)"; exit 2; }
	exports "$dir"
	;;
*)
	echo "usage: scripts/pg.sh start|stop [DIR]|env [DIR]" >&2
	exit 2
	;;
esac
