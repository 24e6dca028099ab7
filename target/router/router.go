// Package router is the built-in target's business front door: it parses a request just enough
// to find the account's bucket (uid % 100), looks the bucket's unit up in the routing table read
// from the core zone, and forwards the request to the unit's primary with the unit's epoch in
// X-Redline-Epoch. On 421 (stale epoch, not primary) it re-reads the table and retries once;
// when a primary stops answering it waits a bounded time for the failover and retries once.
package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/redline-dev/redline/target/corezone"
	"github.com/redline-dev/redline/target/lanes"
	"github.com/redline-dev/redline/target/profiling"
)

// Limits of the router.
const (
	inflightMax        = 4096            // business requests answered at once; more get 503
	bodyBytesMax       = 64 << 10        // a single account or payment
	bulkBodyBytesMax   = 8 << 20         // POST /v1/accounts/bulk
	bulkAccountsMax    = 100_000         // accounts per bulk request
	unitBulkMax        = 10_000          // accounts per call to a unit (PROTOCOL.md)
	replyBytesMax      = 1 << 20         // what the router reads of a unit's answer
	forwardTimeout     = 5 * time.Second // one call to a unit
	failoverWaitMax    = time.Second     // waiting for a dead primary to be replaced
	failoverWaitStep   = 50 * time.Millisecond
	unitConnsMax       = 512 // connections to one unit replica
	shutdownGrace      = 3 * time.Second
	readHeaderTimeout  = 2 * time.Second
	requestReadTimeout = 10 * time.Second
)

// EpochHeader carries the unit's epoch on every forwarded request.
const EpochHeader = "X-Redline-Epoch"

// Config configures the router.
type Config struct {
	// Listen is the business API's address (host:port).
	Listen string
	// CoreAddrs are the core zone replicas' HTTP addresses.
	CoreAddrs []string
	// Log receives the router's log lines (nil: discarded).
	Log io.Writer
}

// Run serves the business API until ctx is cancelled.
func Run(ctx context.Context, cfg Config) error {
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen router: %w", err)
	}
	return Serve(ctx, ln, cfg)
}

// Serve is Run on a listener the caller opened (cfg.Listen is ignored); it closes ln.
func Serve(ctx context.Context, ln net.Listener, cfg Config) error {
	if len(cfg.CoreAddrs) == 0 {
		ln.Close()
		return errors.New("start router: no core addresses")
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	rt := newRouter(cfg)
	defer rt.http.CloseIdleConnections()
	srv := &http.Server{Handler: rt.routes(), ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: requestReadTimeout}
	var wg sync.WaitGroup
	pctx, stopPoll := context.WithCancel(ctx)
	// The poller ends with stopPoll, after the server has stopped.
	wg.Go(func() { rt.table.poll(pctx) })
	// The server goroutine ends when Shutdown closes the listener.
	wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			rt.log.Error("serve router", "err", err)
		}
	})
	rt.log.Info("router up", "addr", ln.Addr().String())
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	_ = srv.Shutdown(sctx)
	rt.batches.Close()
	stopPoll()
	wg.Wait()
	return nil
}

type router struct {
	table    *table
	core     *corezone.Client // cross-unit payments (transfer.go)
	http     *http.Client
	log      *slog.Logger
	metrics  *metrics
	inflight chan struct{}
	batches  *lanes.Lanes[*queued]
}

func newRouter(cfg Config) *router {
	m := newMetrics()
	log := slog.New(slog.NewTextHandler(cfg.Log, nil)).With("role", "router")
	core := corezone.NewClient(cfg.CoreAddrs, &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2}})
	rt := &router{
		table:   &table{core: core, log: log, metrics: m},
		core:    corezone.NewClient(cfg.CoreAddrs, &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: coreConnsMax, IdleConnTimeout: 30 * time.Second}}),
		log:     log,
		metrics: m,
		http: &http.Client{Transport: &http.Transport{
			MaxIdleConns:        4 * unitConnsMax,
			MaxIdleConnsPerHost: unitConnsMax,
			MaxConnsPerHost:     unitConnsMax,
			IdleConnTimeout:     30 * time.Second,
			DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
		}},
		inflight: make(chan struct{}, inflightMax),
	}
	rt.batches = rt.newBatches()
	return rt
}

func (rt *router) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /v1/accounts", rt.wrap("create_account", rt.createAccount))
	mux.Handle("POST /v1/accounts/bulk", rt.wrap("create_accounts", rt.createAccounts))
	mux.Handle("GET /v1/accounts/{uid}", rt.wrap("get_account", rt.getAccount))
	mux.Handle("POST /v1/payments", rt.wrap("pay", rt.pay))
	mux.Handle("GET /v1/payments/{key}", rt.wrap("get_payment", rt.getPayment))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if rt.table.current() == nil {
			writeError(w, http.StatusServiceUnavailable, "routing_unavailable", "no routing table yet")
			return
		}
		// The pid tells the supervisor that the server answering on the address is its child,
		// not another server that held the port first.
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"status":"ok","pid":%d}`+"\n", os.Getpid())
	})
	mux.Handle("GET /metrics", rt.metricsHandler())
	profiling.Register(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return mux
}

// reply is a unit's (or the router's own) answer, copied to the client as is.
type reply struct {
	status int
	body   []byte
}

// handlerFunc answers a business request with a reply.
type handlerFunc func(r *http.Request) reply

// wrap bounds the requests in flight, measures them and writes the reply.
func (rt *router) wrap(route string, h handlerFunc) http.Handler {
	seconds := rt.metrics.seconds.WithLabelValues(route)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		var rep reply
		select {
		case rt.inflight <- struct{}{}:
			rt.metrics.inflight.Inc()
			if mr, bad := rt.mark(r, route); bad != nil {
				rep = *bad
			} else {
				rep = h(mr)
			}
			rt.metrics.inflight.Dec()
			<-rt.inflight
		default:
			rep = errorReply(http.StatusServiceUnavailable, "overloaded", fmt.Sprintf("more than %d requests in flight", inflightMax))
		}
		w.Header().Set("Content-Type", "application/json")
		if rep.status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		w.WriteHeader(rep.status)
		_, _ = w.Write(rep.body)
		rt.metrics.requests.WithLabelValues(route, strconv.Itoa(rep.status)).Inc()
		seconds.Observe(time.Since(start).Seconds())
	})
}
