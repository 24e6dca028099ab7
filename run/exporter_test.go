package run

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redline-dev/redline/metrics"
	"github.com/redline-dev/redline/verify"
)

func TestMetricsEndpointDuringARun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	p, src := planFor(t, srv, twoPhases)
	addrs := make(chan string, 1)
	scraped := make(chan string, 1)
	go func() {
		addr := <-addrs
		// Scrape once the hot phase has data; bounded by the run's own length.
		time.Sleep(1500 * time.Millisecond)
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			scraped <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		scraped <- string(body)
	}()
	_, err := Run(context.Background(), p, Options{RunID: "prom", OutDir: t.TempDir(), PlanSource: src,
		MetricsAddr: "127.0.0.1:0", Started: func(addr string) { addrs <- addr }})
	if err != nil {
		t.Fatal(err)
	}
	body := <-scraped
	for _, want := range []string{
		`redline_http_reqs_total{op="get",phase="warm",run="prom"} 100`,
		`redline_http_req_duration_seconds{op="get",phase="warm",run="prom",quantile="0.99"}`,
		`redline_dropped_iterations_total{op="get",phase="warm",run="prom"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q; got:\n%s", want, body)
		}
	}
}

func TestGaugesAreSampledRecordedAndJudged(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	p, src := builtinPlanFor(t, srv, strings.Replace(twoPhases, `  http_req_failed: ["rate<0.5"]`,
		`  http_req_failed: ["rate<0.5"]
  consumer_lag: ["value<10"]`, 1))
	var calls int
	lag := func(context.Context) ([]metrics.Gauge, error) {
		calls++
		// Lag rises, then drains to zero by the end of the hot phase.
		v := []float64{5, 50, 0}[min(calls-1, 2)]
		return []metrics.Gauge{{Name: ConsumerLagGauge + "settlement", Value: v}}, nil
	}
	dir := t.TempDir()
	rec, err := Run(context.Background(), p, Options{RunID: "gauges", OutDir: dir, PlanSource: src, Gauges: lag})
	if err != nil {
		t.Fatal(err)
	}
	warm, hot := rec.Phases[0].Gauges[ConsumerLagGauge+"settlement"], rec.Phases[1].Gauges[ConsumerLagGauge+"settlement"]
	if warm == nil || hot == nil || max(warm.Max, hot.Max) != 50 || hot.Last != 0 {
		t.Fatalf("lag warm %+v, hot %+v: want a rise to 50, then a last value of 0", warm, hot)
	}
	back, err := ReadRecord(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := back.Phases[1].Gauges[ConsumerLagGauge+"settlement"]; got == nil || *got != *hot {
		t.Errorf("read back %+v, live %+v", got, hot)
	}
	v := Judge(p, back)
	if v.Status != verify.StatusPass {
		t.Errorf("verdict %s %v, want pass: the lag drained", v.Status, v.Reasons)
	}
}
