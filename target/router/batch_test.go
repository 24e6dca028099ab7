package router

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// keyAnswer answers each payment with its own key, after release is closed.
func keyAnswer(release <-chan struct{}) func(*http.Request, []byte) (int, string) {
	return func(_ *http.Request, body []byte) (int, string) {
		<-release
		var p struct {
			Key string `json:"key"`
		}
		_ = json.Unmarshal(body, &p)
		return 200, `{"key":"` + p.Key + `","status":"committed"}`
	}
}

func TestPaymentsToABusyUnitShareBatches(t *testing.T) {
	e := start(t)
	release := make(chan struct{})
	var once sync.Once
	// The unit's handlers wait for release: the servers' cleanup needs it closed.
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	e.a1.setAnswer(keyAnswer(release))
	const payments = 40
	var wg sync.WaitGroup
	got := make([]string, payments)
	for i := range payments {
		// Each client ends with its answer.
		wg.Go(func() {
			resp, err := e.client.Post(e.url+"/v1/payments", "application/json",
				strings.NewReader(fmt.Sprintf(`{"key":"k%d","from_uid":2,"to_uid":4,"amount_minor":1}`, i)))
			if err != nil {
				got[i] = err.Error()
				return
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			got[i] = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
		})
	}
	// Every payment is either in a batch the unit holds or queued behind those batches.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, m := e.do(t, "GET", "/metrics", "")
		held := len(e.a1.requests())
		if strings.Contains(m, fmt.Sprintf("redline_router_batch_queued_payments %d\n", payments-held)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never %d payments queued or at the unit (%d at the unit):\n%s", payments, held, m)
		}
		time.Sleep(10 * time.Millisecond)
	}
	once.Do(func() { close(release) })
	wg.Wait()
	for i, g := range got {
		if want := fmt.Sprintf(`200 {"key":"k%d","status":"committed"}`, i); g != want {
			t.Errorf("payment %d: got %q, want %q", i, g, want)
		}
	}
	if n := len(e.a1.requests()); n != payments {
		t.Errorf("unit a got %d payments, want %d", n, payments)
	}
	// The batches the unit held, then the queued payments taken by the senders as they are freed.
	if n := e.a1.batchCount(); n > 2*laneSenders {
		t.Errorf("%d batch requests for %d payments, want at most %d: the queued ones travel together", n, payments, 2*laneSenders)
	}
}

func TestStressPaymentsTravelAlone(t *testing.T) {
	e := start(t)
	req, err := http.NewRequest("POST", e.url+"/v1/payments", strings.NewReader(`{"key":"k","from_uid":2,"to_uid":4,"amount_minor":1}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Redline-Run", "run-1")
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := e.a1.requests()
	if resp.StatusCode != 200 || len(got) != 1 || got[0].Path != "/v1/payments" {
		t.Errorf("got %d and %v, want 200 and one POST /v1/payments", resp.StatusCode, got)
	}
}

func TestAPaymentMisdirectedInsideABatchIs503(t *testing.T) {
	e := start(t)
	release := make(chan struct{})
	answer := keyAnswer(release)
	e.a1.setAnswer(func(r *http.Request, body []byte) (int, string) {
		if strings.Contains(string(body), `"k1"`) {
			return 421, `{"error":{"code":"stale_epoch","message":"epoch 3 < 4"}}`
		}
		return answer(r, body)
	})
	close(release)
	status, body := e.do(t, "POST", "/v1/payments", `{"key":"k1","from_uid":2,"to_uid":4,"amount_minor":1}`)
	if status != 503 || errorCode(body) != "unit_unavailable" {
		t.Errorf("got %d %s, want 503 unit_unavailable", status, body)
	}
	status, body = e.do(t, "POST", "/v1/payments", `{"key":"k2","from_uid":2,"to_uid":4,"amount_minor":1}`)
	if status != 200 {
		t.Errorf("got %d %s, want 200", status, body)
	}
}
