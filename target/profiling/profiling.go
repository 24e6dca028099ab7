// Package profiling serves Go's runtime profiles (net/http/pprof) on a target process's own
// HTTP listener, to loopback clients only: the CPU, heap, goroutine, block and mutex profiles
// of a router or unit replica under load. Block and mutex sampling cost time on every event, so
// they are off unless the process starts with REDLINE_PROFILE_RATES=1.
package profiling

import (
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
)

// RatesEnv turns block and mutex sampling on when set to 1.
const RatesEnv = "REDLINE_PROFILE_RATES"

// Register adds /debug/pprof/ to mux, answering loopback clients only.
func Register(mux *http.ServeMux) {
	if os.Getenv(RatesEnv) == "1" {
		runtime.SetBlockProfileRate(10_000) // one sample per 10 µs blocked
		runtime.SetMutexProfileFraction(10)
	}
	mux.Handle("GET /debug/pprof/", loopbackOnly(http.HandlerFunc(pprof.Index)))
	mux.Handle("GET /debug/pprof/profile", loopbackOnly(http.HandlerFunc(pprof.Profile)))
	mux.Handle("GET /debug/pprof/trace", loopbackOnly(http.HandlerFunc(pprof.Trace)))
}

func loopbackOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			http.Error(w, `{"error":{"code":"forbidden","message":"profiles are served to loopback clients only"}}`, http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}
