package supervisor

import (
	"os"
	"runtime"
	"strconv"
)

// procsPerCPU is how many of the topology's processes share one CPU when the supervisor picks
// their GOMAXPROCS.
const procsPerCPU = 4

// childEnv is the environment of a process of role: the supervisor's own, plus GOMAXPROCS for
// the processes on the payment path when the user did not set it. A topology is some 16 Go
// processes; with the default (one P per CPU), each hands a payment from goroutine to goroutine
// across Ps, waking and spinning OS threads: on 2 CPUs that cost 40% of the router's and the
// units' CPU per payment (measured with `make bench-target`). One P per procsPerCPU CPUs keeps
// a handoff on the same thread. The core zone replicas keep the default: their Raft heartbeats
// must not wait behind their HTTP work (the coordination of cross-unit payments).
func childEnv(role string) []string {
	env := os.Environ()
	if _, set := os.LookupEnv("GOMAXPROCS"); set || role == RoleCore {
		return env
	}
	return append(env, "GOMAXPROCS="+strconv.Itoa(max(1, runtime.NumCPU()/procsPerCPU)))
}
