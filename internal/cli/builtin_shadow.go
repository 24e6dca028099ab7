package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/redline-dev/redline/metrics"
	"github.com/redline-dev/redline/run"
	"github.com/redline-dev/redline/shadow"
)

// The built-in target keeps stress traffic (every request of a run carries the run id, unless
// the plan says target.marker: off) in its shadow plane. Its accounts are seeded in both
// planes, and its count of stress writes that reached production is sampled once a second, as
// the gauge shadow_leaks that plans judge (shadow_leaks: ["count==0"]).

// gauges samples the built-in target's gauges: each consumer group's lag and the stress writes
// in production data (run.Options.Gauges).
func (t *builtinTarget) gauges(ctx context.Context) ([]metrics.Gauge, error) {
	out, err := t.consumerLag(ctx)
	if err != nil {
		return out, err
	}
	data, status, err := t.do(ctx, http.MethodGet, t.adminURL+"/admin/shadow", nil, 1<<20)
	switch {
	case err != nil:
		return out, err
	case status == http.StatusNotFound:
		return out, nil // a target without a shadow plane
	case status/100 != 2:
		return out, fmt.Errorf("shadow: status %d", status)
	}
	var s struct {
		Leaks *float64 `json:"leaks"`
	}
	if err := json.Unmarshal(data, &s); err != nil || s.Leaks == nil {
		return out, fmt.Errorf("shadow: no leaks in %q", data)
	}
	return append(out, metrics.Gauge{Name: run.ShadowLeaksGauge, Value: *s.Leaks}), nil
}

// openBoth opens a bulk of accounts in the production plane and, marked with runID, in the
// shadow plane: a rehearsal's marked payments find their accounts there.
func (t *builtinTarget) openBoth(ctx context.Context, body []byte, runID string) error {
	for _, h := range []http.Header{nil, {shadow.Header: {runID}}} {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.routerURL+"/v1/accounts/bulk", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header = h.Clone()
		if req.Header == nil {
			req.Header = http.Header{}
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			plane := "production"
			if h != nil {
				plane = "shadow"
			}
			return fmt.Errorf("%s plane: status %d: %s", plane, resp.StatusCode, bytes.TrimSpace(data))
		}
	}
	return nil
}
