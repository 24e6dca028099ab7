# Redline's developer targets. `make help` lists them.
GO       ?= go
BIN      := bin/redline
PKGS     := ./...

.PHONY: help build test check fmt vet staticcheck test-race bench bench-load bench-soak bench-chaos bench-target tools

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-16s %s\n", $$1, $$2}'

build: ## build bin/redline
	$(GO) build -o $(BIN) ./cmd/redline

test: ## the whole test suite, installing what it needs (what CI runs)
	./scripts/test.sh

check: fmt vet staticcheck test-race ## format diff, vet, staticcheck, go test -race

fmt: ## fail when gofmt would change a file
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet: ## go vet
	$(GO) vet $(PKGS)

staticcheck: tools ## staticcheck
	$$($(GO) env GOPATH)/bin/staticcheck $(PKGS)

test-race: ## go test -race, short tier
	$(GO) test -race -short $(PKGS)

tools: ## install the pinned developer tools
	@test -x $$($(GO) env GOPATH)/bin/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2

bench: bench-load bench-chaos bench-target ## every benchmark, printed as ratios against the peers

bench-load: ## load engine against wrk and vegeta, side by side
	./scripts/bench-load.sh

bench-soak: ## ten minutes of load at 5,000/s: resident memory at minute 1 and minute 10
	./scripts/bench-load.sh soak

bench-chaos: ## chaos: worst injection lateness of 20 faults 20 ms apart (budget 100 ms), kill evidence (budget 1 s)
	$(GO) test -run '^$$' -bench 'InjectionTiming|KillEvidence' ./chaos/

bench-target: ## built-in target: payments/s vs pgbench TPC-B tps, failover p99, a throttled consumer
	./scripts/bench-target.sh
	./scripts/bench-consumer-lag.sh
