// Package load is Redline's open-model load generator: arrivals on an absolute schedule
// (constant, ramping and spike profiles, striped across agents by execution segments), sent by
// a bounded set of workers over pooled keep-alive HTTP connections, each outcome folded into a
// Recorder as it completes.
//
// The model is the one of k6's arrival-rate executors and of wrk2, not of "N users in a loop":
// an arrival is due at its time whether or not earlier requests have completed, an arrival
// that finds every worker busy is dropped and counted, never queued, and latency is measured
// from the time the arrival was due, so a server that stalls shows its stall in every request
// that waited for it (no coordinated omission).
//
// Plain HTTP is sent by an epoll event loop with its own HTTP/1.1 writer and parser, so that
// the CPU cost per request stays close to wrk's; https by goroutine workers over fasthttp
// (see client.go for the measurements behind the split).
//
//	cfg := load.Config{Phase: "peak", Profile: load.Constant(2000, time.Minute), ...}
//	gen, err := load.NewGenerator(cfg, collector)
//	res, err := gen.Run(ctx)
package load
