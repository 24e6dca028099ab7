package run

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
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
