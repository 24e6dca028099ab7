package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redline-dev/redline/metrics"
	"github.com/redline-dev/redline/plan"
	"github.com/redline-dev/redline/run"
	"github.com/redline-dev/redline/target/supervisor"
)

// Limits of the built-in target's lifecycle inside a run.
const (
	builtinStartTimeout  = 60 * time.Second
	builtinSeedChunk     = 10_000 // accounts per bulk request
	builtinSeedTimeout   = 2 * time.Minute
	builtinAuditTimeout  = 2 * time.Minute
	builtinAuditBytesMax = 16 << 20
	// builtinBalanceMinor is each seeded account's opening balance: 10,000.00 in minor units,
	// enough that a rehearsal's payments rarely meet insufficient funds.
	builtinBalanceMinor = 1_000_000
)

// builtinTarget is the built-in payment target, started for one run and stopped after it.
type builtinTarget struct {
	routerURL string
	adminURL  string
	token     string
	dataDir   string
	cancel    context.CancelFunc
	done      chan error
	// noConsumers is set once the admin API answered 404 for the consumer groups: a target
	// without consumers is not asked again every second.
	noConsumers atomic.Bool
}

// consumerGroups are the built-in target's event consumer groups (target/PROTOCOL.md).
var consumerGroups = []string{"ledger", "settlement", "notification"}

// consumerLag samples each consumer group's lag through the admin API: run.Options.Gauges.
func (t *builtinTarget) consumerLag(ctx context.Context) ([]metrics.Gauge, error) {
	if t.noConsumers.Load() {
		return nil, nil
	}
	var out []metrics.Gauge
	for _, g := range consumerGroups {
		data, status, err := t.do(ctx, http.MethodGet, t.adminURL+"/admin/consumers/"+g, nil, 64<<10)
		switch {
		case err != nil:
			return out, err
		case status == http.StatusNotFound:
			t.noConsumers.Store(true)
			return nil, nil
		case status/100 != 2:
			return out, fmt.Errorf("consumer %s: status %d", g, status)
		}
		var c struct {
			Lag *float64 `json:"lag"`
		}
		if err := json.Unmarshal(data, &c); err != nil || c.Lag == nil {
			return out, fmt.Errorf("consumer %s: no lag in %q", g, data)
		}
		out = append(out, metrics.Gauge{Name: run.ConsumerLagGauge + g, Value: *c.Lag})
	}
	return out, nil
}

// startBuiltin starts the built-in target's processes under dir, waits until every one serves,
// and opens the plan's accounts. The target runs on its own context: a Ctrl-C of the run stops
// new arrivals first, and the target only when stop is called, after the audit.
func startBuiltin(ctx context.Context, streams IO, dir string, b plan.Builtin, dsn, runID string) (*builtinTarget, error) {
	tctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	t := &builtinTarget{dataDir: dir, cancel: cancel, done: make(chan error, 1)}
	ready := make(chan supervisor.Topology, 1)
	logf, err := os.Create(filepath.Join(filepath.Dir(dir), "target.log"))
	if err != nil {
		cancel()
		return nil, fmt.Errorf("start built-in target: %w", err)
	}
	cfg := supervisor.Config{
		Units: b.Units, DataDir: dir, Listen: "127.0.0.1:0", Admin: "127.0.0.1:0", Log: logf, DSN: dsn,
		Ready: func(topo supervisor.Topology) { ready <- topo },
	}
	// Owned by builtinTarget: stop cancels tctx and waits for it.
	go func() {
		t.done <- supervisor.Run(tctx, cfg)
		logf.Close()
	}()
	start := time.Now()
	select {
	case topo := <-ready:
		t.routerURL, t.adminURL = "http://"+topo.Router, "http://"+topo.Admin
	case err := <-t.done:
		cancel()
		if errors.Is(err, supervisor.ErrInvalidConfig) {
			return nil, fmt.Errorf("%w: start built-in target: %w", ErrInvalid, err)
		}
		return nil, fmt.Errorf("start built-in target: %w", err)
	case <-time.After(builtinStartTimeout):
		t.stop()
		return nil, fmt.Errorf("start built-in target: not ready after %v (see %s)", builtinStartTimeout, logf.Name())
	case <-ctx.Done():
		t.stop()
		return nil, fmt.Errorf("%w: interrupted while the built-in target started", ErrAborted)
	}
	token, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.stop()
		return nil, fmt.Errorf("start built-in target: %w", err)
	}
	t.token = strings.TrimSpace(string(token))
	fmt.Fprintf(streams.ErrOut, "built-in target: %d units ready in %v, router %s\n", b.Units, time.Since(start).Round(time.Millisecond), t.routerURL)
	if err := t.seed(ctx, b.Accounts, runID); err != nil {
		t.stop()
		return nil, err
	}
	fmt.Fprintf(streams.ErrOut, "built-in target: %d accounts opened in %v\n", b.Accounts, time.Since(start).Round(time.Millisecond))
	return t, nil
}

// seed opens accounts 1..n, each with builtinBalanceMinor, in bulk requests, in both planes.
func (t *builtinTarget) seed(ctx context.Context, n int64, runID string) error {
	ctx, cancel := context.WithTimeout(ctx, builtinSeedTimeout)
	defer cancel()
	type account struct {
		UID          int64 `json:"uid"`
		BalanceMinor int64 `json:"balance_minor"`
	}
	for from := int64(1); from <= n; from += builtinSeedChunk {
		to := min(from+builtinSeedChunk-1, n)
		batch := make([]account, 0, to-from+1)
		for uid := from; uid <= to; uid++ {
			batch = append(batch, account{UID: uid, BalanceMinor: builtinBalanceMinor})
		}
		body, err := json.Marshal(map[string]any{"accounts": batch})
		if err != nil {
			return fmt.Errorf("open accounts: %w", err)
		}
		if err := t.openBoth(ctx, body, runID); err != nil {
			return fmt.Errorf("open accounts %d..%d: %w", from, to, err)
		}
	}
	return nil
}

// audit runs the target's ledger audit through its admin API.
func (t *builtinTarget) audit(ctx context.Context) (*run.Audit, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), builtinAuditTimeout)
	defer cancel()
	data, err := t.call(ctx, http.MethodGet, t.adminURL+"/admin/audit", nil, builtinAuditBytesMax)
	if err != nil {
		return nil, fmt.Errorf("audit built-in target: %w", err)
	}
	return run.ParseAudit(data)
}

// call sends one request and returns the body of a 2xx answer (an audit that found a false
// invariant answers 200 too: its verdict is in the body).
func (t *builtinTarget) call(ctx context.Context, method, url string, body []byte, bytesMax int64) ([]byte, error) {
	data, status, err := t.do(ctx, method, url, body, bytesMax)
	if err != nil {
		return nil, err
	}
	if status/100 != 2 {
		return nil, fmt.Errorf("%s %s: status %d: %s", method, url, status, bytes.TrimSpace(data))
	}
	return data, nil
}

// do sends one request, with the admin token to the admin API, and reads at most bytesMax of
// the answer.
func (t *builtinTarget) do(ctx context.Context, method, url string, body []byte, bytesMax int64) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if strings.HasPrefix(url, t.adminURL) {
		req.Header.Set("Authorization", "Bearer "+t.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, bytesMax))
	return data, resp.StatusCode, err
}

// stop stops every process of the target and waits for them.
func (t *builtinTarget) stop() error {
	t.cancel()
	// Run returns nil once it stopped every process of a target that had been ready.
	if err := <-t.done; err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("stop built-in target: %w", err)
	}
	return nil
}
