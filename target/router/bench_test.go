package router

import (
	"strings"
	"sync/atomic"
	"testing"
)

// BenchmarkPay measures the router's own cost per payment: parse, route, forward to a unit
// that answers at once, copy the answer back. go test -bench Pay -cpu 1,2 ./target/router
func BenchmarkPay(b *testing.B) {
	e := start(b)
	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := seq.Add(1)
			body := `{"key":"k` + strings.Repeat("x", 8) + string(rune('a'+n%26)) + `","from_uid":2,"to_uid":104,"amount_minor":5}`
			resp, err := e.client.Post(e.url+"/v1/payments", "application/json", strings.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
}

// BenchmarkDirect is BenchmarkPay without the router: the baseline of the HTTP round trip.
func BenchmarkDirect(b *testing.B) {
	e := start(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := e.client.Post(e.a1.srv.URL+"/v1/payments", "application/json", strings.NewReader(`{"key":"k","from_uid":2,"to_uid":104,"amount_minor":5}`))
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
		}
	})
}
