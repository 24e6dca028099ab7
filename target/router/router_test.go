package router

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redline-dev/redline/target/corezone"
)

// fakeCore serves a routing table the test changes at will, and records the cross-unit
// payments it is given (answering them committed).
type fakeCore struct {
	mu        sync.Mutex
	st        corezone.State
	transfers []string
	srv       *httptest.Server
}

func newFakeCore(t testing.TB, st corezone.State) *fakeCore {
	c := &fakeCore{st: st}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		defer c.mu.Unlock()
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/v1/transfers":
			b, _ := io.ReadAll(r.Body)
			c.transfers = append(c.transfers, string(b))
			_, _ = io.WriteString(w, `{"status":"committed"}`)
		case strings.HasPrefix(r.URL.Path, "/v1/transfers/"):
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error":{"code":"not_found","message":"no transfer"}}`)
		default:
			_ = json.NewEncoder(w).Encode(c.st)
		}
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *fakeCore) set(f func(*corezone.State)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.st)
}

// fakeUnit records what it is sent and answers with answer.
type fakeUnit struct {
	name    string
	mu      sync.Mutex
	got     []seen
	batches int // batch requests received
	answer  func(r *http.Request, body []byte) (int, string)
	srv     *httptest.Server
}

type seen struct {
	Method, Path, Epoch string
	Body                string
}

func newFakeUnit(t testing.TB, name string) *fakeUnit {
	u := &fakeUnit{name: name, answer: func(*http.Request, []byte) (int, string) { return 200, `{"unit":"` + name + `"}` }}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/v1/payments/batch" {
			u.serveBatch(w, r, b)
			return
		}
		u.mu.Lock()
		u.got = append(u.got, seen{r.Method, r.URL.Path, r.Header.Get(EpochHeader), string(b)})
		answer := u.answer
		u.mu.Unlock()
		status, body := answer(r, b)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

// serveBatch answers a batch as a unit does: each payment recorded and answered by answer,
// alone; a batch whose every payment is misdirected is answered 421 whole.
func (u *fakeUnit) serveBatch(w http.ResponseWriter, r *http.Request, b []byte) {
	var req struct {
		Payments []json.RawMessage `json:"payments"`
	}
	if err := json.Unmarshal(b, &req); err != nil {
		w.WriteHeader(400)
		return
	}
	u.mu.Lock()
	u.batches++
	u.mu.Unlock()
	var replies []string
	misdirected := 0
	first := ""
	u.mu.Lock()
	for _, p := range req.Payments {
		u.got = append(u.got, seen{r.Method, r.URL.Path, r.Header.Get(EpochHeader), string(p)})
	}
	answer := u.answer
	u.mu.Unlock()
	for _, p := range req.Payments {
		status, body := answer(r, p)
		if status == http.StatusMisdirectedRequest {
			misdirected++
		}
		if first == "" {
			first = body
		}
		replies = append(replies, fmt.Sprintf(`{"status":%d,"body":%s}`, status, body))
	}
	if misdirected == len(req.Payments) {
		w.WriteHeader(http.StatusMisdirectedRequest)
		_, _ = io.WriteString(w, first)
		return
	}
	_, _ = io.WriteString(w, `{"replies":[`+strings.Join(replies, ",")+`]}`)
}

func (u *fakeUnit) batchCount() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.batches
}

func (u *fakeUnit) addr() string { return strings.TrimPrefix(u.srv.URL, "http://") }

func (u *fakeUnit) requests() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seen(nil), u.got...)
}

func (u *fakeUnit) setAnswer(f func(r *http.Request, body []byte) (int, string)) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.answer = f
}

// env is a router in front of a fake core and fake units a (r1, r2) and b (r1).
type env struct {
	core       *fakeCore
	a1, a2, b1 *fakeUnit
	url        string
	client     *http.Client
}

func start(t testing.TB) *env {
	t.Helper()
	e := &env{a1: newFakeUnit(t, "a1"), a2: newFakeUnit(t, "a2"), b1: newFakeUnit(t, "b1")}
	st := corezone.State{Epoch: 3, Buckets: make([]string, corezone.BucketCount), Units: map[string]corezone.Unit{
		"a": {Epoch: 3, Primary: "r1", Standby: "r2", StandbyOK: true, Addrs: map[string]string{"r1": e.a1.addr(), "r2": e.a2.addr()}},
		"b": {Epoch: 2, Primary: "r1", Addrs: map[string]string{"r1": e.b1.addr()}},
	}}
	for b := range st.Buckets {
		st.Buckets[b] = []string{"a", "b"}[b%2]
	}
	e.core = newFakeCore(t, st)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.url = "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	// The router runs until the cleanup cancels it and waits for it.
	go func() {
		done <- Serve(ctx, ln, Config{CoreAddrs: []string{strings.TrimPrefix(e.core.srv.URL, "http://")}})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	e.client = &http.Client{Timeout: 10 * time.Second}
	t.Cleanup(e.client.CloseIdleConnections)
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := e.client.Get(e.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("router never healthy")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return e
}

func (e *env) do(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	return e.doWith(t, method, path, body, nil)
}

// doWith is do with the request's headers set to h.
func (e *env) doWith(t *testing.T, method, path, body string, h http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func errorCode(body string) string {
	var e errorBody
	_ = json.Unmarshal([]byte(body), &e)
	return e.Error.Code
}

func TestForwarding(t *testing.T) {
	tests := []struct {
		name         string
		method       string
		path, body   string
		wantStatus   int
		wantCode     string
		wantA, wantB []seen   // requests the units receive
		wantCore     []string // cross-unit payments the core zone receives
	}{
		{
			name: "payment in unit a", method: "POST", path: "/v1/payments",
			body:       `{"key":"k1","from_uid":2,"to_uid":104,"amount_minor":5}`,
			wantStatus: 200,
			wantA:      []seen{{"POST", "/v1/payments/batch", "3", `{"key":"k1","from_uid":2,"to_uid":104,"amount_minor":5}`}},
		},
		{
			name: "payment in unit b", method: "POST", path: "/v1/payments",
			body:       `{"key":"k2","from_uid":1,"to_uid":3,"amount_minor":5}`,
			wantStatus: 200,
			wantB:      []seen{{"POST", "/v1/payments/batch", "2", `{"key":"k2","from_uid":1,"to_uid":3,"amount_minor":5}`}},
		},
		{
			name: "cross-unit payment", method: "POST", path: "/v1/payments",
			body: `{"key":"k3","from_uid":1,"to_uid":2,"amount_minor":5}`, wantStatus: 200, wantCore: []string{`{"key":"k3","from_uid":1,"to_uid":2,"amount_minor":5}`},
		},
		{
			name: "payment without key", method: "POST", path: "/v1/payments",
			body: `{"from_uid":1,"to_uid":3,"amount_minor":5}`, wantStatus: 400, wantCode: "missing_field",
		},
		{
			name: "payment without from_uid", method: "POST", path: "/v1/payments",
			body: `{"key":"k","to_uid":3,"amount_minor":5}`, wantStatus: 400, wantCode: "missing_field",
		},
		{
			name: "malformed payment", method: "POST", path: "/v1/payments",
			body: `{"key":"k","from_uid":1,`, wantStatus: 400, wantCode: "bad_json",
		},
		{
			name: "fractional uid", method: "POST", path: "/v1/payments",
			body: `{"key":"k","from_uid":1.5,"to_uid":3}`, wantStatus: 400, wantCode: "bad_json",
		},
		{
			name: "same-unit payment with a newline in its key", method: "POST", path: "/v1/payments",
			body: `{"key":"nl\nkey","from_uid":1,"to_uid":3,"amount_minor":5}`, wantStatus: 400, wantCode: "invalid_key",
		},
		{
			name: "cross-unit payment with a newline in its key", method: "POST", path: "/v1/payments",
			body: `{"key":"nl\nkey","from_uid":1,"to_uid":2,"amount_minor":5}`, wantStatus: 400, wantCode: "invalid_key",
		},
		{
			name: "same-unit payment with a slash in its key", method: "POST", path: "/v1/payments",
			body: `{"key":"a/b","from_uid":1,"to_uid":3,"amount_minor":5}`, wantStatus: 400, wantCode: "invalid_key",
		},
		{
			name: "cross-unit payment with invalid UTF-8 in its key", method: "POST", path: "/v1/payments",
			body: "{\"key\":\"k\xff\",\"from_uid\":1,\"to_uid\":2,\"amount_minor\":5}", wantStatus: 400, wantCode: "invalid_key",
		},
		{
			name: "cross-unit payment without amount", method: "POST", path: "/v1/payments",
			body: `{"key":"k","from_uid":1,"to_uid":2}`, wantStatus: 400, wantCode: "missing_field",
		},
		{
			name: "cross-unit payment with a negative amount", method: "POST", path: "/v1/payments",
			body: `{"key":"k","from_uid":1,"to_uid":2,"amount_minor":-1}`, wantStatus: 400, wantCode: "invalid_amount",
		},
		{
			name: "payment as an array", method: "POST", path: "/v1/payments",
			body: `[1]`, wantStatus: 400, wantCode: "bad_json",
		},
		{
			name: "read payment with a bad key", method: "GET", path: "/v1/payments/a%01", wantStatus: 400, wantCode: "invalid_key",
		},
		{
			name: "negative uid", method: "POST", path: "/v1/payments",
			body: `{"key":"k","from_uid":-1,"to_uid":3,"amount_minor":5}`, wantStatus: 400, wantCode: "invalid_uid",
		},
		{
			name: "oversized payment", method: "POST", path: "/v1/payments",
			body: `{"key":"` + strings.Repeat("x", bodyBytesMax) + `"}`, wantStatus: 413, wantCode: "body_too_large",
		},
		{
			name: "account", method: "POST", path: "/v1/accounts",
			body: `{"uid":7,"balance_minor":100}`, wantStatus: 200,
			wantB: []seen{{"POST", "/v1/accounts", "2", `{"uid":7,"balance_minor":100}`}},
		},
		{
			name: "account without uid", method: "POST", path: "/v1/accounts",
			body: `{"balance_minor":100}`, wantStatus: 400, wantCode: "missing_field",
		},
		{
			name: "read account", method: "GET", path: "/v1/accounts/42", wantStatus: 200,
			wantA: []seen{{"GET", "/v1/accounts/42", "3", ""}},
		},
		{
			name: "read account with a bad uid", method: "GET", path: "/v1/accounts/x", wantStatus: 400, wantCode: "invalid_uid",
		},
		{
			name: "unknown endpoint", method: "DELETE", path: "/v1/payments", wantStatus: 404, wantCode: "not_found",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := start(t)
			status, body := e.do(t, tt.method, tt.path, tt.body)
			if status != tt.wantStatus {
				t.Errorf("status %d (%s), want %d", status, body, tt.wantStatus)
			}
			if tt.wantCode != "" && errorCode(body) != tt.wantCode {
				t.Errorf("code %q, want %q", errorCode(body), tt.wantCode)
			}
			if diff := cmp.Diff(e.a1.requests(), tt.wantA); diff != "" {
				t.Errorf("unit a (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(e.b1.requests(), tt.wantB); diff != "" {
				t.Errorf("unit b (-got +want):\n%s", diff)
			}
			e.core.mu.Lock()
			defer e.core.mu.Unlock()
			if diff := cmp.Diff(e.core.transfers, tt.wantCore); diff != "" {
				t.Errorf("core zone (-got +want):\n%s", diff)
			}
		})
	}
}

func TestRetriesOnceOnAStaleEpoch(t *testing.T) {
	e := start(t)
	// a/r1 has been replaced by a/r2 at epoch 4: it answers 421, and the table changes.
	e.a1.setAnswer(func(*http.Request, []byte) (int, string) {
		e.core.set(func(s *corezone.State) {
			u := s.Units["a"]
			u.Epoch, u.Primary, u.Standby = 4, "r2", ""
			s.Units["a"] = u
			s.Epoch = 4
		})
		return 421, `{"error":{"code":"stale_epoch","message":"epoch 3 < 4"}}`
	})
	status, body := e.do(t, "POST", "/v1/payments", `{"key":"k","from_uid":2,"to_uid":4,"amount_minor":1}`)
	if status != 200 {
		t.Fatalf("status %d %s, want 200", status, body)
	}
	want := []seen{{"POST", "/v1/payments/batch", "4", `{"key":"k","from_uid":2,"to_uid":4,"amount_minor":1}`}}
	if diff := cmp.Diff(e.a2.requests(), want); diff != "" {
		t.Errorf("new primary (-got +want):\n%s", diff)
	}
}

func TestGivesUpAfterTwoMisdirections(t *testing.T) {
	e := start(t)
	e.a1.setAnswer(func(*http.Request, []byte) (int, string) { return 421, `{"error":{"code":"not_primary"}}` })
	status, body := e.do(t, "POST", "/v1/payments", `{"key":"k","from_uid":2,"to_uid":4,"amount_minor":1}`)
	if status != 503 || errorCode(body) != "unit_unavailable" {
		t.Errorf("got %d %s, want 503 unit_unavailable", status, body)
	}
	if n := len(e.a1.requests()); n != 2 {
		t.Errorf("%d requests to a/r1, want 2", n)
	}
}

func TestWaitsForTheFailoverOfADeadPrimary(t *testing.T) {
	e := start(t)
	e.a1.srv.Close()
	// The core zone promotes a/r2 a little later.
	timer := time.AfterFunc(200*time.Millisecond, func() {
		e.core.set(func(s *corezone.State) {
			u := s.Units["a"]
			u.Epoch, u.Primary, u.Standby = 4, "r2", ""
			s.Units["a"] = u
		})
	})
	defer timer.Stop()
	status, body := e.do(t, "POST", "/v1/payments", `{"key":"k","from_uid":2,"to_uid":4,"amount_minor":1}`)
	if status != 200 || len(e.a2.requests()) != 1 {
		t.Fatalf("got %d %s and %d requests to a/r2, want 200 and 1", status, body, len(e.a2.requests()))
	}
}

func TestADeadPrimaryWithoutFailoverIs503(t *testing.T) {
	e := start(t)
	e.b1.srv.Close()
	start := time.Now()
	status, body := e.do(t, "POST", "/v1/payments", `{"key":"k","from_uid":1,"to_uid":3,"amount_minor":1}`)
	if status != 503 || errorCode(body) != "unit_unavailable" {
		t.Errorf("got %d %s, want 503 unit_unavailable", status, body)
	}
	if took := time.Since(start); took > failoverWaitMax+time.Second {
		t.Errorf("took %v, want about %v", took, failoverWaitMax)
	}
}

func TestReadPaymentAsksEveryUnit(t *testing.T) {
	notFound := func(*http.Request, []byte) (int, string) { return 404, `{"error":{"code":"not_found"}}` }
	found := func(*http.Request, []byte) (int, string) { return 200, `{"key":"k","status":"committed"}` }
	tests := []struct {
		name       string
		a, b       func(*http.Request, []byte) (int, string)
		closeB     bool
		wantStatus int
	}{
		{"in b", notFound, found, false, 200},
		{"nowhere", notFound, notFound, false, 404},
		{"unknown while b is down", notFound, nil, true, 503},
		{"in a while b is down", found, nil, true, 200},
		{"the same in a and b", found, found, false, 200},
		// Keys are unique per unit: two payers of two units used one key. Answering whichever
		// unit answers first would give either, at random.
		{"different in a and b", found, func(*http.Request, []byte) (int, string) {
			return 200, `{"key":"k","status":"failed","reason":"insufficient_funds"}`
		}, false, 409},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := start(t)
			e.a1.setAnswer(tt.a)
			if tt.closeB {
				e.b1.srv.Close()
			} else {
				e.b1.setAnswer(tt.b)
			}
			status, body := e.do(t, "GET", "/v1/payments/k", "")
			if status != tt.wantStatus {
				t.Errorf("status %d %s, want %d", status, body, tt.wantStatus)
			}
		})
	}
}

func TestBulkIsSplitByUnitInChunks(t *testing.T) {
	e := start(t)
	const n = 25_001
	var b bytes.Buffer
	b.WriteString(`{"accounts":[`)
	for uid := range n {
		if uid > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"uid":%d,"balance_minor":100}`, uid)
	}
	b.WriteString(`]}`)
	status, body := e.do(t, "POST", "/v1/accounts/bulk", b.String())
	if status != 200 || strings.TrimSpace(body) != fmt.Sprintf(`{"created":%d}`, n) {
		t.Fatalf("got %d %s", status, body)
	}
	for _, tc := range []struct {
		u      *fakeUnit
		parity int64
	}{{e.a1, 0}, {e.b1, 1}} {
		total := 0
		for _, req := range tc.u.requests() {
			var got struct {
				Accounts []struct{ UID int64 } `json:"accounts"`
			}
			if err := json.Unmarshal([]byte(req.Body), &got); err != nil {
				t.Fatal(err)
			}
			if len(got.Accounts) > unitBulkMax {
				t.Errorf("%s got %d accounts in one call, at most %d", tc.u.name, len(got.Accounts), unitBulkMax)
			}
			for _, a := range got.Accounts {
				if a.UID%2 != tc.parity {
					t.Errorf("%s got uid %d", tc.u.name, a.UID)
				}
			}
			total += len(got.Accounts)
		}
		if want := (n + 1 - int(tc.parity)) / 2; total != want {
			t.Errorf("%s got %d accounts, want %d", tc.u.name, total, want)
		}
	}
}

func TestBulkRejectsBadInputWholesale(t *testing.T) {
	tests := []struct{ name, body, code string }{
		{"empty", `{"accounts":[]}`, "missing_field"},
		{"one without uid", `{"accounts":[{"uid":1,"balance_minor":3},{"balance_minor":3}]}`, "missing_field"},
		{"malformed", `{"accounts":[{"uid":1}`, "bad_json"},
		{"a negative balance in unit b", `{"accounts":[{"uid":10,"balance_minor":100},{"uid":11,"balance_minor":-1}]}`, "invalid_amount"},
		{"a missing balance in unit b", `{"accounts":[{"uid":10,"balance_minor":100},{"uid":11}]}`, "missing_field"},
		{"an unknown field in unit b", `{"accounts":[{"uid":10,"balance_minor":100},{"uid":11,"balance_minor":1,"x":1}]}`, "bad_json"},
		{"an unknown field beside", `{"accounts":[{"uid":10,"balance_minor":100}],"x":1}`, "bad_json"},
		{"a uid twice", `{"accounts":[{"uid":10,"balance_minor":100},{"uid":10,"balance_minor":100}]}`, "duplicate_account"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := start(t)
			status, body := e.do(t, "POST", "/v1/accounts/bulk", tt.body)
			if status != 400 || errorCode(body) != tt.code {
				t.Errorf("got %d %s, want 400 %s", status, body, tt.code)
			}
			if n := len(e.a1.requests()) + len(e.b1.requests()); n != 0 {
				t.Errorf("%d requests reached units", n)
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	e := start(t)
	e.do(t, "POST", "/v1/payments", `{"key":"k1","from_uid":2,"to_uid":104,"amount_minor":5}`)
	status, body := e.do(t, "GET", "/metrics", "")
	if status != 200 || !strings.Contains(body, `redline_router_requests_total{code="200",route="pay"} 1`) {
		t.Errorf("metrics %d:\n%s", status, body)
	}
}

// TestABadKeyFailsNoOtherPayment sends bursts of payments to one unit, a bad key among them: it
// alone is refused, before anything is forwarded, and the payments batched around it commit.
func TestABadKeyFailsNoOtherPayment(t *testing.T) {
	e := start(t)
	release := make(chan struct{})
	e.a1.setAnswer(func(*http.Request, []byte) (int, string) {
		<-release // hold the first batch so that the others gather behind it
		return 200, `{"status":"committed"}`
	})
	bad := []string{`nl\nkey`, `\u0001`, `\u007f`, "k\xff"}
	const n = 60
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Go(func() {
			key := fmt.Sprintf("good-%d", i)
			if i%15 == 0 {
				key = bad[i/15]
			}
			statuses[i], _ = e.do(t, "POST", "/v1/payments", `{"key":"`+key+`","from_uid":2,"to_uid":4,"amount_minor":1}`)
		})
	}
	time.Sleep(200 * time.Millisecond)
	close(release)
	wg.Wait()
	for i, status := range statuses {
		want := 200
		if i%15 == 0 {
			want = 400
		}
		if status != want {
			t.Errorf("payment %d: status %d, want %d", i, status, want)
		}
	}
	if got := len(e.a1.requests()); got != n-len(bad) {
		t.Errorf("unit a got %d payments, want %d", got, n-len(bad))
	}
}
