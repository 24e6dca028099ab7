#!/usr/bin/env bash
# The whole test suite, as CI runs it, on a fresh machine with only Go: installs what the tests
# need, checks format, vet and staticcheck, then runs every test tier with the race detector.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

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
