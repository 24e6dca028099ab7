#!/usr/bin/env bash
# The whole test suite, as CI runs it, on a fresh machine with only Go: installs what the tests
# need (Node.js tools, PostgreSQL), checks format, vet and staticcheck, then runs every test
# tier with the race detector, the target's storage tests on SQLite and PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

apt_install() {
  if [ -z "${apt_updated:-}" ]; then apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

step "install what the tests need"
# Node.js and k6-html-reporter: a tool made for k6 summaries reads Redline's summary.json.
command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
npm ci --prefix reports/testdata/k6tools --no-audit --no-fund --loglevel=error
export REDLINE_REQUIRE_NODE_TOOLS=1
# PostgreSQL: a throwaway cluster for the tests that run the target on it (scripts/pg.sh
# installs the Debian package when missing); stopped and removed on exit.
pg_env=$(scripts/pg.sh start)
eval "$pg_env"
trap 'scripts/pg.sh stop "$REDLINE_PG_DIR"' EXIT
export REDLINE_REQUIRE_PG=1

step "format"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

step "vet"
go vet ./...

step "staticcheck"
staticcheck="$(go env GOPATH)/bin/staticcheck"
[ -x "$staticcheck" ] || go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
"$staticcheck" ./...

step "tests (race detector)"
go test -race -count=1 -timeout 20m ./...
