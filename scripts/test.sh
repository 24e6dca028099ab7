#!/usr/bin/env bash
# The whole test suite, as CI runs it, on a fresh machine with only Go: installs what the tests
# need, checks format, vet and staticcheck, then runs every test tier with the race detector.
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
