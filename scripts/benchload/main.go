// Command benchload measures Redline's load generator against its peers, side by side against
// the same local server (scripts/benchserver), and prints the figures `make bench-load` and
// `make bench-soak` report:
//
//	benchload cpu   -url URL -rate R -duration D   CPU per request: wrk, vegeta, Redline; ratios
//	benchload rate  -url URL -rate R -duration D   achieved rate and send lateness
//	benchload stall -url URL -rate R -duration D   intended-time vs service-time p99, stalling server
//	benchload soak  -url URL -rate R -duration D   resident memory at minute 1 and at the end
//
// It measures its own CPU with getrusage and wrk's and vegeta's from their exit status (the
// rusage wait4 returns), so every figure counts user and system time alike.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redline-dev/redline/load"
	"github.com/redline-dev/redline/metrics"
	"github.com/redline-dev/redline/plan"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchload cpu|rate|stall|soak [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "benchload:", err)
		os.Exit(1)
	}
}

type options struct {
	url      string
	rateRPS  float64
	duration time.Duration
	workers  int
	conns    int
	wrkConns int
	procs    int
	rounds   int
	marker   string
}

// benchRunID is the run id the benchmark marks its requests with: as long as a real one.
const benchRunID = "20261127T010203Z-0042-bench"

func run(ctx context.Context, cmd string, args []string) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	var o options
	fs.StringVar(&o.url, "url", "http://127.0.0.1:8080/", "target URL (loopback only)")
	fs.Float64Var(&o.rateRPS, "rate", 10000, "arrivals per second")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of each measurement")
	fs.IntVar(&o.workers, "workers", 0, "Redline's bound on requests in flight; 0 means the rate times 1s, as plans default")
	fs.IntVar(&o.conns, "connections", 0, "Redline's bound on connections; 0 means workers")
	fs.IntVar(&o.wrkConns, "wrk-connections", 10, "wrk's connections (closed loop)")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds of the paced CPU comparison")
	fs.IntVar(&o.procs, "procs", 0, "GOMAXPROCS for Redline's run; 0 leaves it")
	fs.StringVar(&o.marker, "marker", "header", "the stress marker on Redline's requests, as redline run sends it: header, baggage or off")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if m := plan.Marker(o.marker); m != plan.MarkerHeader && m != plan.MarkerBaggage && m != plan.MarkerOff {
		return fmt.Errorf("-marker %q: want header, baggage or off", o.marker)
	}
	if o.workers == 0 {
		o.workers = int(max(16, math.Ceil(o.rateRPS)))
	}
	if o.procs > 0 {
		runtime.GOMAXPROCS(o.procs)
	}
	switch cmd {
	case "cpu":
		return cpuCmd(ctx, o)
	case "rate":
		return rateCmd(ctx, o)
	case "stall":
		return stallCmd(ctx, o)
	case "soak":
		return soakCmd(ctx, o)
	}
	return fmt.Errorf("unknown command %q", cmd)
}

// redline runs the generator once at a constant rate and returns its stats and CPU time.
func redline(ctx context.Context, o options, d time.Duration) (*metrics.Stats, load.Result, time.Duration, error) {
	cfg := load.Config{
		Phase:       "bench",
		Profile:     load.Constant(o.rateRPS, d),
		Requests:    plan.Marker(o.marker).Mark([]load.Request{{Name: "get", Weight: 1, Method: "GET", URL: o.url}}, benchRunID),
		Workers:     o.workers,
		Connections: o.conns,
		Timeout:     5 * time.Second,
	}
	col := metrics.NewCollector(time.Now())
	gen, err := load.NewGenerator(cfg, col)
	if err != nil {
		return nil, load.Result{}, 0, err
	}
	cpu0 := selfCPU()
	res, err := gen.Run(ctx)
	cpu := selfCPU() - cpu0
	all, _ := col.Phase("bench")
	return all, res, cpu, err
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func childCPU(ps *os.ProcessState) time.Duration { return ps.UserTime() + ps.SystemTime() }

func microsPer(cpu time.Duration, n int64) float64 {
	if n == 0 {
		return math.NaN()
	}
	return float64(cpu) / float64(time.Microsecond) / float64(n)
}

// peer is one tool's figure.
type peer struct {
	name     string
	requests int64
	elapsed  time.Duration
	cpu      time.Duration
}

func (p peer) line() string {
	return fmt.Sprintf("  %-34s %9d requests  %8.0f/s  CPU %7.2fs  %6.2f µs/request",
		p.name, p.requests, p.rate(), p.cpu.Seconds(), p.micros())
}

func (p peer) micros() float64 { return microsPer(p.cpu, p.requests) }

func (p peer) rate() float64 { return float64(p.requests) / p.elapsed.Seconds() }

// cpuCmd compares CPU per request. wrk is a closed-loop tool: at full speed its event loop
// finds several responses ready per epoll_wait, a batching an open-model generator at a set
// rate does not get. So wrk runs twice: at full speed (its best case), and paced by a delay()
// script to about the open-model rate, each connection waiting 1 ms between requests; vegeta
// and Redline then run at the rate paced wrk achieved, the same work per second as it did.
// The paced comparison runs in several rounds, interleaved, and the ratios are of the medians,
// because a shared machine's noise moves single figures by a third.
func cpuCmd(ctx context.Context, o options) error {
	fmt.Printf("CPU per request against %s, side by side (user+system CPU of the load tool only):\n", o.url)
	full, err := runWrk(ctx, o, o.wrkConns, "")
	if err != nil {
		return err
	}
	fmt.Println(full.line())
	script := filepath.Join(os.TempDir(), fmt.Sprintf("benchload-delay-%d.lua", os.Getpid()))
	if err := os.WriteFile(script, []byte("function delay()\n  return 1\nend\n"), 0o600); err != nil {
		return fmt.Errorf("write wrk script: %w", err)
	}
	defer os.Remove(script)
	// One request per connection per ~1.5 ms (the delay, the timer's slack and the round trip).
	conns := max(1, int(math.Round(o.rateRPS*0.0015)))
	var wrks, vegetas, redlines []float64
	for round := 1; round <= o.rounds; round++ {
		fmt.Printf(" round %d of %d\n", round, o.rounds)
		paced, err := runWrk(ctx, o, conns, script)
		if err != nil {
			return err
		}
		fmt.Println(paced.line())
		ro := o
		ro.rateRPS = math.Round(paced.rate())
		v, err := runVegeta(ctx, ro)
		if err != nil {
			return err
		}
		fmt.Println(v.line())
		st, res, cpu, err := redline(ctx, ro, ro.duration)
		if err != nil {
			return err
		}
		// The rate is over the schedule's length: the run also waits for its last responses.
		r := peer{name: fmt.Sprintf("redline (open model, %.0f/s)", ro.rateRPS), requests: st.Requests, elapsed: ro.duration, cpu: cpu}
		_ = res
		fmt.Printf("%s  (dropped %d, failed %d)\n", r.line(), st.Dropped, st.Failed)
		wrks, vegetas, redlines = append(wrks, paced.micros()), append(vegetas, v.micros()), append(redlines, r.micros())
	}
	w, v, r := median(wrks), median(vegetas), median(redlines)
	fmt.Printf(" medians: wrk paced %.2f, vegeta %.2f, redline %.2f µs/request\n", w, v, r)
	fmt.Printf("  ratio redline/wrk, same rate      %.2f  (goal ≤ 1.50) %s\n", r/w, verdict(r <= 1.5*w))
	fmt.Printf("  ratio redline/wrk at full speed   %.2f\n", r/full.micros())
	fmt.Printf("  ratio redline/vegeta, same rate   %.2f\n", r/v)
	return nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return math.NaN()
	}
	return s[len(s)/2]
}

var wrkRequests = regexp.MustCompile(`(\d+) requests in ([0-9.]+)(us|ms|s|m)`)

// runWrk runs wrk with one thread and conns connections, paced by script when it is not "".
func runWrk(ctx context.Context, o options, conns int, script string) (peer, error) {
	args := []string{"-t1", fmt.Sprintf("-c%d", conns), fmt.Sprintf("-d%ds", int(o.duration.Seconds()))}
	name := fmt.Sprintf("wrk (closed loop, -t1 -c%d)", conns)
	if script != "" {
		args = append(args, "-s", script)
		name = fmt.Sprintf("wrk (paced, -t1 -c%d, delay 1ms)", conns)
	}
	args = append(args, o.url)
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "wrk", args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return peer{}, fmt.Errorf("run wrk: %w: %s", err, out.String())
	}
	m := wrkRequests.FindStringSubmatch(out.String())
	if m == nil {
		return peer{}, fmt.Errorf("parse wrk output: %q", out.String())
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return peer{name: name, requests: n, elapsed: time.Since(start), cpu: childCPU(cmd.ProcessState)}, nil
}

// runVegeta runs vegeta attack at the same rate and counts its results with vegeta report.
func runVegeta(ctx context.Context, o options) (peer, error) {
	bin, err := vegetaPath()
	if err != nil {
		return peer{}, err
	}
	dir, err := os.MkdirTemp("", "benchload")
	if err != nil {
		return peer{}, fmt.Errorf("make temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	results := filepath.Join(dir, "results.bin")
	attack := exec.CommandContext(ctx, bin, "attack", "-rate", fmt.Sprintf("%.0f/s", o.rateRPS),
		"-duration", o.duration.String(), "-timeout", "5s", "-max-workers", strconv.Itoa(o.workers), "-output", results)
	attack.Stdin = strings.NewReader("GET " + o.url + "\n")
	var errOut bytes.Buffer
	attack.Stderr = &errOut
	start := time.Now()
	if err := attack.Run(); err != nil {
		return peer{}, fmt.Errorf("run vegeta attack: %w: %s", err, errOut.String())
	}
	elapsed := time.Since(start)
	rep, err := exec.CommandContext(ctx, bin, "report", "-type", "json", results).Output()
	if err != nil {
		return peer{}, fmt.Errorf("run vegeta report: %w", err)
	}
	var r struct {
		Requests int64 `json:"requests"`
	}
	if err := json.Unmarshal(rep, &r); err != nil {
		return peer{}, fmt.Errorf("parse vegeta report: %w", err)
	}
	return peer{name: fmt.Sprintf("vegeta (open model, %.0f/s)", o.rateRPS), requests: r.Requests, elapsed: elapsed, cpu: childCPU(attack.ProcessState)}, nil
}

func vegetaPath() (string, error) {
	if p, err := exec.LookPath("vegeta"); err == nil {
		return p, nil
	}
	gopath, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		return "", errors.New("find vegeta: not on PATH and no go env GOPATH")
	}
	p := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "vegeta")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("find vegeta: %w (go install github.com/tsenart/vegeta/v12@v12.13.0)", err)
	}
	return p, nil
}

func rateCmd(ctx context.Context, o options) error {
	st, res, cpu, err := redline(ctx, o, o.duration)
	if err != nil {
		return err
	}
	want := o.rateRPS * o.duration.Seconds()
	achieved := float64(st.Requests) / want
	p99 := st.Lateness.Quantile(0.99)
	fmt.Printf("Redline at %.0f arrivals/s for %v against %s:\n", o.rateRPS, o.duration, o.url)
	fmt.Printf("  sent %d of %d scheduled, dropped %d, failed %d; CPU %.2f µs/request\n", st.Requests, int64(want), st.Dropped, st.Failed, microsPer(cpu, st.Requests))
	fmt.Printf("  achieved %.2f%% of the schedule (goal ≥ 99.5%%) %s\n", 100*achieved, verdict(achieved >= 0.995))
	fmt.Printf("  send lateness p50 %v  p99 %v (goal ≤ 1ms) %s  max %v\n", st.Lateness.Quantile(0.5), p99, verdict(p99 <= time.Millisecond), st.Lateness.Max())
	fmt.Printf("  latency (from intended time) p50 %v p99 %v; service time p99 %v\n", st.Latency.Quantile(0.5), st.Latency.Quantile(0.99), st.Service.Quantile(0.99))
	_ = res
	return nil
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

func stallCmd(ctx context.Context, o options) error {
	st, _, _, err := redline(ctx, o, o.duration)
	if err != nil {
		return err
	}
	in, svc := st.Latency.Quantile(0.99), st.Service.Quantile(0.99)
	fmt.Printf("Redline at %.0f arrivals/s for %v against a server that stalls (%s):\n", o.rateRPS, o.duration, o.url)
	fmt.Printf("  sent %d, dropped %d, failed %d\n", st.Requests, st.Dropped, st.Failed)
	fmt.Printf("  p99 latency from the intended time %v, p99 service time %v (ratio %.1f)\n", in, svc, float64(in)/float64(max(svc, time.Microsecond)))
	fmt.Printf("  the stall shows in intended-time latency only: %s\n", verdict(in > 2*svc))
	return nil
}

func soakCmd(ctx context.Context, o options) error {
	if o.duration < 2*time.Minute {
		return fmt.Errorf("soak: duration %v, want at least 2m", o.duration)
	}
	type mark struct {
		at  time.Duration
		rss int64
	}
	marks := make(chan mark, 2)
	start := time.Now()
	go func() { // owned by soakCmd: ends after the last mark, before the run ends
		for _, at := range []time.Duration{time.Minute, o.duration - 5*time.Second} {
			select {
			case <-time.After(time.Until(start.Add(at))):
			case <-ctx.Done():
				close(marks)
				return
			}
			marks <- mark{at: at, rss: rssBytes()}
		}
		close(marks)
	}()
	st, _, cpu, err := redline(ctx, o, o.duration)
	if err != nil {
		return err
	}
	var got []mark
	for m := range marks {
		got = append(got, m)
	}
	fmt.Printf("Redline soak at %.0f arrivals/s for %v: sent %d, dropped %d, failed %d, CPU %.2f µs/request\n",
		o.rateRPS, o.duration, st.Requests, st.Dropped, st.Failed, microsPer(cpu, st.Requests))
	if len(got) < 2 {
		return errors.New("soak: interrupted before the second memory mark")
	}
	ratio := float64(got[1].rss) / float64(got[0].rss)
	fmt.Printf("  resident memory at %v: %.1f MiB; at %v: %.1f MiB; ratio %.3f (goal within 10%%) %s\n",
		got[0].at, mib(got[0].rss), got[1].at.Round(time.Second), mib(got[1].rss), ratio, verdict(math.Abs(ratio-1) <= 0.10))
	return nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// rssBytes reads VmRSS from /proc/self/status.
func rssBytes() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
