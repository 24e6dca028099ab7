package load

import (
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// BenchmarkSend measures one worker's path of the worker engine (fasthttp, used for https) for
// one request, rendering included, against a local server: CPU and allocations per request.
func BenchmarkSend(b *testing.B) {
	// A fasthttp server allocates nothing per request, so the allocations counted are ours.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) { c.SetBodyString("ok") }}
	go srv.Serve(ln) //nolint:errcheck // ends when the benchmark shuts it down
	defer srv.Shutdown()
	url := "http://" + ln.Addr().String()
	for _, bc := range []struct {
		name string
		cfg  Config
	}{
		{"static", getConfig(url+"/health", Constant(1, time.Second), 1)},
		{"templated", func() Config {
			c := validConfig()
			c.Requests[0].URL = url + "/pay/{{uid}}?to={{uid2}}"
			return c
		}()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			g, err := NewGenerator(bc.cfg, nopRecorder{}, withWorkerEngine())
			if err != nil {
				b.Fatal(err)
			}
			defer g.client.close()
			w := newWorkerState(len(g.mix.ops))
			b.ReportAllocs()
			for n := range int64(b.N) {
				r := newArrivalRand(g.seed, n)
				g.send(w, arrival{seq: n, op: g.mix.pick(&r), intended: time.Now(), rand: r})
			}
			if f := g.failed.Load(); f > 0 {
				b.Fatalf("%d requests failed", f)
			}
		})
	}
}
