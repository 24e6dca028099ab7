package supervisor

import (
	"os"
	"runtime"
	"strconv"
)

// Runtime settings of the processes on the payment path (router, units, broker, consumers).
const (
	// procsPerCPU is how many of the topology's processes share one CPU when the supervisor
	// picks their GOMAXPROCS.
	procsPerCPU = 4
	// gcPercent is their GOGC: their heaps are tens of MiB, and the collector was 5–8% of their
	// CPU per payment at the default 100.
	gcPercent = 200
)

// childEnv is the environment of a process of role: the supervisor's own, plus GOMAXPROCS and
// GOGC for the processes on the payment path where the user did not set them. A topology is
// some 16 Go processes; with the default GOMAXPROCS (one P per CPU), each hands a payment from
// goroutine to goroutine across Ps, waking and spinning OS threads: on 2 CPUs that cost 40% of
// the router's and the units' CPU per payment (measured with `make bench-target`). One P per
// procsPerCPU CPUs keeps a handoff on the same thread. The core zone replicas keep the
// defaults: their Raft heartbeats must not wait behind their HTTP work (the coordination of
// cross-unit payments).
func childEnv(role string) []string {
	env := os.Environ()
	if role == RoleCore {
		return env
	}
	if _, set := os.LookupEnv("GOMAXPROCS"); !set {
		env = append(env, "GOMAXPROCS="+strconv.Itoa(max(1, runtime.NumCPU()/procsPerCPU)))
	}
	if _, set := os.LookupEnv("GOGC"); !set {
		env = append(env, "GOGC="+strconv.Itoa(gcPercent))
	}
	return env
}
