package supervisor

import (
	"os"
	"runtime"
	"strconv"
)

// Runtime settings of the topology's processes.
const (
	// procsPerCPU is how many of the topology's processes share one CPU when the supervisor
	// picks their GOMAXPROCS.
	procsPerCPU = 4
	// gcPercent is their GOGC: their heaps are tens of MiB, and the collector was 5–8% of their
	// CPU per payment at the default 100.
	gcPercent = 200
)

// childEnv is the environment of a topology process: the supervisor's own, plus GOMAXPROCS and
// GOGC where the user did not set them. A topology is some 16 Go processes; with the default
// GOMAXPROCS (one P per CPU), each hands a payment from goroutine to goroutine across Ps,
// waking and spinning OS threads: on 2 CPUs that cost 40% of the router's and the units' CPU
// per payment (measured with `make bench-target`). One P per procsPerCPU CPUs keeps a handoff on
// the same thread. The core zone replicas run so too (they coordinate every cross-unit
// payment): at 520 payments/s with a fifth cross-unit their CPU per payment went ×0.88 and the
// p99 of a decision did not move. A Raft heartbeat then waits behind HTTP work on the one P at
// most a scheduling quantum (10 ms), against a 500 ms heartbeat timeout.
func childEnv() []string {
	env := os.Environ()
	if _, set := os.LookupEnv("GOMAXPROCS"); !set {
		env = append(env, "GOMAXPROCS="+strconv.Itoa(max(1, runtime.NumCPU()/procsPerCPU)))
	}
	if _, set := os.LookupEnv("GOGC"); !set {
		env = append(env, "GOGC="+strconv.Itoa(gcPercent))
	}
	return env
}
