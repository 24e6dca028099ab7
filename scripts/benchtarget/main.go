// Command benchtarget drives the built-in target for `make bench-target`: payments through the
// router, each with its own idempotency key.
//
//	benchtarget -data DIR -mode throughput   open model (Redline's load engine): growing constant
//	                                         rates; the highest one whose p99, from each arrival's
//	                                         intended time, stays under -p99-max; -cross 0.2
//	                                         makes a fifth of them cross-unit payments
//	benchtarget -data DIR -mode cpu          CPU per payment of each kind of process at -rate
//	benchtarget -data DIR -mode failover     -kills SIGKILLs of unit primaries under load: kill →
//	                                         buckets serving again, p99; then every acknowledged
//	                                         key read back and every balance recomputed
//
// DIR is the data dir of a running `redline target up`: its topology.json names the router and
// the admin API, its admin.token the token. The last line of output is a JSON summary.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"
)

// Limits of the driver.
const (
	workersMax      = 1024
	requestTimeout  = 10 * time.Second
	retryFor        = 15 * time.Second
	healWait        = 60 * time.Second
	replyBytesMax   = 1 << 20
	bulkPerRequest  = 50_000
	readBackWorkers = 32
)

type options struct {
	dataDir     string
	mode        string
	accounts    int
	rate        float64
	rateStart   float64
	rateFactor  float64
	step        time.Duration
	warmup      time.Duration
	prewarm     time.Duration
	p99Max      time.Duration
	tries       int
	kills       int
	killEvery   time.Duration
	loadWorkers int
	cross       float64
	units       int64
}

func main() {
	var o options
	flag.StringVar(&o.dataDir, "data", "", "data dir of a running `redline target up` (required)")
	flag.StringVar(&o.mode, "mode", "throughput", "throughput, cpu or failover")
	flag.IntVar(&o.accounts, "accounts", 10_000, "accounts to create (a multiple of 100)")
	flag.Float64Var(&o.rate, "rate", 1000, "cpu: the rate offered, payments/s")
	flag.Float64Var(&o.rateStart, "rate-start", 500, "throughput: the first rate tried, payments/s")
	flag.Float64Var(&o.rateFactor, "rate-factor", 1.5, "throughput: each next rate is this times the last, until one does not hold")
	flag.DurationVar(&o.step, "step", 10*time.Second, "throughput: measured time per rate")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "throughput: unmeasured time before each step")
	flag.DurationVar(&o.prewarm, "prewarm", 10*time.Second, "throughput: unmeasured load at -rate-start before the first step (a fresh target's caches, heaps and connections)")
	flag.DurationVar(&o.p99Max, "p99-max", 50*time.Millisecond, "throughput: the latency bound of a sustained rate")
	flag.IntVar(&o.tries, "tries", 2, "throughput: windows measured at a rate before it counts as not held (1..5)")
	flag.IntVar(&o.kills, "kills", 10, "failover: unit primaries to kill")
	flag.DurationVar(&o.killEvery, "kill-every", time.Second, "failover: load between a healed target and the next kill")
	flag.IntVar(&o.loadWorkers, "workers", 32, "failover: workers of the background load")
	flag.Float64Var(&o.cross, "cross", 0, "share (0..1) of payments between accounts of two units")
	flag.Int64Var(&o.units, "units", 4, "the target's units (where the buckets are: bucket % units)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "benchtarget:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	if o.dataDir == "" || o.accounts < 200 || o.accounts%100 != 0 {
		return errors.New("-data is required and -accounts a multiple of 100 from 200")
	}
	if o.cross < 0 || o.cross > 1 || o.units < 1 || o.units > 26 {
		return errors.New("-cross must be in 0..1 and -units in 1..26")
	}
	if o.tries < 1 || o.tries > 5 {
		return errors.New("-tries must be in 1..5")
	}
	if o.rate <= 0 || o.rateStart <= 0 || o.rateFactor <= 1 || o.step <= 0 || o.warmup < 0 || o.prewarm < 0 {
		return errors.New("-rate and -rate-start must be positive, -rate-factor over 1, -step positive, -warmup and -prewarm not negative")
	}
	t, err := openTarget(o.dataDir)
	if err != nil {
		return err
	}
	if err := t.createAccounts(ctx, o.accounts, 1_000_000_000); err != nil {
		return err
	}
	switch o.mode {
	case "throughput":
		return throughput(ctx, t, o)
	case "failover":
		return failover(ctx, t, o)
	case "cpu":
		return cpuPerPayment(ctx, t, o)
	default:
		return fmt.Errorf("mode %q: want throughput, cpu or failover", o.mode)
	}
}

// target is a running target's APIs.
type target struct {
	router, admin, token string
	http                 *http.Client
}

func openTarget(dir string) (*target, error) {
	var top struct {
		Router string `json:"router"`
		Admin  string `json:"admin"`
	}
	// The target prints its ready line a moment before it writes topology.json.
	b, err := os.ReadFile(filepath.Join(dir, "topology.json"))
	for wait := 0; errors.Is(err, os.ErrNotExist) && wait < 100; wait++ {
		time.Sleep(100 * time.Millisecond)
		b, err = os.ReadFile(filepath.Join(dir, "topology.json"))
	}
	if err != nil {
		return nil, fmt.Errorf("read topology: %w", err)
	}
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, fmt.Errorf("decode topology: %w", err)
	}
	tok, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		return nil, fmt.Errorf("read admin token: %w", err)
	}
	return &target{
		router: "http://" + top.Router, admin: "http://" + top.Admin, token: strings.TrimSpace(string(tok)),
		http: &http.Client{Timeout: requestTimeout, Transport: &http.Transport{
			MaxIdleConns: 2 * workersMax, MaxIdleConnsPerHost: workersMax, IdleConnTimeout: 30 * time.Second,
		}},
	}, nil
}

// call sends one request; it returns the status and the body.
func (t *target) call(ctx context.Context, method, url string, in any, admin bool) (int, []byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if admin {
		req.Header.Set("Authorization", "Bearer "+t.token)
	}
	resp, err := t.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, replyBytesMax))
	return resp.StatusCode, b, err
}

func (t *target) createAccounts(ctx context.Context, n int, balance int64) error {
	type account struct {
		UID          int64 `json:"uid"`
		BalanceMinor int64 `json:"balance_minor"`
	}
	start := time.Now()
	for from := 0; from < n; from += bulkPerRequest {
		var req struct {
			Accounts []account `json:"accounts"`
		}
		for uid := from; uid < min(from+bulkPerRequest, n); uid++ {
			req.Accounts = append(req.Accounts, account{int64(uid), balance})
		}
		status, body, err := t.call(ctx, http.MethodPost, t.router+"/v1/accounts/bulk", req, false)
		if err != nil || status != http.StatusOK {
			return fmt.Errorf("create accounts: %d %s %v", status, bytes.TrimSpace(body), err)
		}
	}
	fmt.Printf("created %d accounts in %v\n", n, time.Since(start).Round(time.Millisecond))
	return nil
}

// errRefused is a 4xx answer to a payment: retrying it cannot help.
var errRefused = errors.New("refused")

// payment is the body of POST /v1/payments.
type payment struct {
	Key         string `json:"key"`
	FromUID     int64  `json:"from_uid"`
	ToUID       int64  `json:"to_uid"`
	AmountMinor int64  `json:"amount_minor"`
}

type outcome struct {
	Status string `json:"status"`
}

// pay sends p once and returns the outcome's status ("" when there is none: retry).
func (t *target) pay(ctx context.Context, p payment) (string, error) {
	status, body, err := t.call(ctx, http.MethodPost, t.router+"/v1/payments", p, false)
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		if status >= 400 && status < 500 && status != http.StatusMisdirectedRequest {
			return "", fmt.Errorf("%w: payment %s: %d %s", errRefused, p.Key, status, bytes.TrimSpace(body))
		}
		return "", nil
	}
	var o outcome
	if err := json.Unmarshal(body, &o); err != nil {
		return "", err
	}
	return o.Status, nil
}

// newPayment picks two accounts of the same bucket (so of the same unit), or with probability
// o.cross two accounts of two units (the buckets are spread bucket % units).
func newPayment(rng *rand.Rand, worker int, seq int64, o options) payment {
	accounts := int64(o.accounts)
	from := rng.Int64N(accounts)
	to := (from + 100*(1+rng.Int64N(accounts/100-1))) % accounts
	if o.units > 1 && rng.Float64() < o.cross {
		for range 1_000 { // 1 - 1/units of the draws land in another unit
			bucket := (from%100 + 1 + rng.Int64N(99)) % 100
			if bucket%o.units != (from%100)%o.units {
				to = 100*rng.Int64N(accounts/100) + bucket
				break
			}
		}
	}
	return payment{Key: fmt.Sprintf("b%d-%d-%x", worker, seq, rng.Uint32()), FromUID: from, ToUID: to, AmountMinor: 1 + rng.Int64N(100)}
}

func sleep(ctx context.Context, d time.Duration) {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
	case <-tm.C:
	}
}
