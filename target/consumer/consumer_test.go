package consumer

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/redline-dev/redline/target/events"
	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/sqldb"
	"github.com/redline-dev/redline/target/sqldb/sqldbtest"
)

type harness struct {
	t     *testing.T
	url   string
	js    jetstream.JetStream
	place sqldb.Place // the group's database
}

// newHarness starts a broker; the group's database lives on srv (the zero Server: SQLite).
func newHarness(t *testing.T, srv sqldb.Server) *harness {
	b, err := events.StartBroker(events.BrokerConfig{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	nc, js, _, err := events.Connect(context.Background(), b.URL(), "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return &harness{t: t, url: b.URL(), js: js, place: srv.Place(t.TempDir(), FileName, "consumer", "settlement")}
}

// publish sends events a-from..a-(to-1); the returned digest is theirs.
func (h *harness) publish(from, to int) {
	for i := from; i < to; i++ {
		e := events.Event{ID: events.ID("a", int64(i)), Unit: "a", Seq: int64(i), Key: fmt.Sprintf("k%d", i), FromUID: 1, ToUID: 2, AmountMinor: 1}
		m, err := events.Message(e)
		if err != nil {
			h.t.Fatal(err)
		}
		if _, err := h.js.PublishMsg(context.Background(), m); err != nil {
			h.t.Fatal(err)
		}
	}
}

func digest(n int) ledger.Digest {
	var d ledger.Digest
	for i := 1; i <= n; i++ {
		d.Add(events.ID("a", int64(i)), fmt.Sprintf("k%d", i))
	}
	return d
}

type running struct {
	addr   string
	cancel context.CancelFunc
	done   chan error
}

func (h *harness) start(defects []Defect, kill func(cancel context.CancelFunc)) *running {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cfg := Config{Group: "settlement", DataDir: h.place.Dir, DSN: h.place.DSN, Schema: h.place.Schema, NATS: h.url, Listener: ln, Defects: defects}
	if kill != nil {
		cfg.killPoint = func() { kill(cancel) }
	}
	r := &running{addr: ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- Run(ctx, cfg) }() // ends with cancel
	h.t.Cleanup(r.stop)
	return r
}

func (r *running) stop() {
	if r.cancel != nil {
		r.cancel()
		<-r.done
		r.cancel = nil
	}
}

func get(t *testing.T, addr, path string, out any) {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

func call(t *testing.T, method, addr, path, body string) int {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func waitUntil(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestExactlyOnceAcrossKill kills the consumer between its two steps on the first batch, then
// restarts it: applying before acking, the redelivered batch is skipped by the inbox and every
// event is applied once; with the ack-before-apply defect the acked batch is never redelivered
// and the audit's digest shows events missing. Both on SQLite and on PostgreSQL, where the
// offline figures (the audit of a stopped target) must equal the running group's.
func TestExactlyOnceAcrossKill(t *testing.T) {
	for _, be := range sqldbtest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			for _, defect := range []bool{false, true} {
				t.Run(fmt.Sprintf("defect=%v", defect), func(t *testing.T) { exactlyOnceAcrossKill(t, be.Server(t), defect) })
			}
		})
	}
}

func exactlyOnceAcrossKill(t *testing.T, srv sqldb.Server, defect bool) {
	h := newHarness(t, srv)
	h.publish(1, 101)
	var defects []Defect
	if defect {
		defects = []Defect{DefectAckBeforeApply}
	}
	var once atomic.Bool
	first := h.start(defects, func(cancel context.CancelFunc) {
		if once.CompareAndSwap(false, true) {
			cancel() // the wrong moment
		}
	})
	<-first.done
	first.cancel = nil
	r := h.start(defects, nil)
	var g ledger.Group
	waitUntil(t, "lag drained", 10*time.Second, func() bool {
		var st State
		get(t, r.addr, "/v1/state", &st)
		return st.Lag == 0 && (st.Applied == 100 || defect)
	})
	time.Sleep(3 * pollInterval)
	get(t, r.addr, "/internal/audit", &g)
	checks := ledger.EvaluateEvents(ledger.Events{Outbox: digest(100), Stream: digest(100), StreamMessages: 100, Groups: []ledger.Group{g}})
	got := checks[1].Verdict
	if want := map[bool]ledger.Verdict{false: ledger.True, true: ledger.False}[defect]; got != want {
		t.Fatalf("events_applied_once = %s (%s), want %s; group %+v", got, checks[1].Detail, want, g)
	}
	r.stop()
	off, err := ReadFigures(context.Background(), h.place)
	if err != nil || off.Inbox != g.Inbox || off.Applied != g.Applied {
		t.Errorf("offline figures %+v %v, want the running group's %+v", off, err, g)
	}
}

// TestThrottlePauseRelease: a rate limit slows the group, a pause stops it (lag grows), and the
// release drains it.
func TestThrottlePauseRelease(t *testing.T) {
	h := newHarness(t, sqldb.Server{})
	r := h.start(nil, nil)
	if code := call(t, http.MethodPost, r.addr, "/v1/throttle", `{"rate_per_s": 0}`); code != http.StatusOK {
		t.Fatalf("pause: %d", code)
	}
	h.publish(1, 201)
	var st State
	waitUntil(t, "the lag of 200 seen while paused", 10*time.Second, func() bool {
		get(t, r.addr, "/v1/state", &st)
		return st.Lag == 200
	})
	if !st.Throttled || !st.Paused || st.Applied != 0 {
		t.Fatalf("paused: %+v", st)
	}
	// At 100/s the group applies events, never faster than the rate allows (plus one second's
	// burst): the bound, not the speed, is the property; a starved machine may apply fewer.
	if code := call(t, http.MethodPost, r.addr, "/v1/throttle", `{"rate_per_s": 100}`); code != http.StatusOK {
		t.Fatalf("throttle: %d", code)
	}
	throttled := time.Now()
	waitUntil(t, "events applied at 100/s", 10*time.Second, func() bool {
		get(t, r.addr, "/v1/state", &st)
		return st.Applied >= 20
	})
	if limit := 100 * (time.Since(throttled).Seconds() + 1); float64(st.Applied) > limit {
		t.Fatalf("at 100/s for %v applied %d, over %.0f", time.Since(throttled), st.Applied, limit)
	}
	if code := call(t, http.MethodPost, r.addr, "/v1/throttle", `{"percent": 500}`); code != http.StatusBadRequest {
		t.Fatalf("percent 500: %d", code)
	}
	if code := call(t, http.MethodDelete, r.addr, "/v1/throttle", ""); code != http.StatusOK {
		t.Fatalf("release: %d", code)
	}
	waitUntil(t, "drained", 10*time.Second, func() bool {
		get(t, r.addr, "/v1/state", &st)
		return st.Applied == 200 && st.Lag == 0 && !st.Throttled && st.DrainMS > 0
	})
	if st.MaxLag < 150 {
		t.Errorf("max lag %d, want about 200", st.MaxLag)
	}
	t.Logf("drained in %d ms", st.DrainMS)
}
