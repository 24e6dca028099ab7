// Command benchserver is the minimal local HTTP server that `make bench-load` points wrk, vegeta
// and Redline at: every request gets "200 ok" at once, except during an optional stall, when
// responses wait until the stall ends (a stop-the-world pause, seen from the client).
//
//	benchserver -addr 127.0.0.1:0 -stall 1s -stall-every 10s
//
// It prints its address on the first line of standard output and serves until SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchserver:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address (loopback only)")
	stall := flag.Duration("stall", 0, "how long each stall lasts; 0 never stalls")
	every := flag.Duration("stall-every", 10*time.Second, "period of the stalls")
	flag.Parse()
	if *stall < 0 || (*stall > 0 && *stall >= *every) {
		return fmt.Errorf("check flags: stall %v must be in [0, stall-every %v)", *stall, *every)
	}
	ln, err := net.Listen("tcp4", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if ip := ln.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
		ln.Close()
		return fmt.Errorf("listen: %v is not a loopback address", ip)
	}
	fmt.Println(ln.Addr())

	start := time.Now()
	body := []byte("ok")
	srv := &fasthttp.Server{
		Handler: func(c *fasthttp.RequestCtx) {
			if *stall > 0 {
				stallUntilEnd(start, *stall, *every)
			}
			c.SetContentType("text/plain")
			c.SetBody(body)
		},
		Name:                          "benchserver",
		NoDefaultDate:                 true,
		NoDefaultContentType:          true,
		DisableHeaderNamesNormalizing: true,
		ReadTimeout:                   time.Minute,
		IdleTimeout:                   time.Minute,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }() // ends when ln closes, below
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.ShutdownWithContext(sctx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	<-errc
	return nil
}

// shutdownTimeout bounds the wait for open connections at shutdown.
const shutdownTimeout = 5 * time.Second

// stallUntilEnd blocks while the server is inside a stall: the last `stall` of every `every`
// since start, so the first stall begins one period minus one stall after start.
func stallUntilEnd(start time.Time, stall, every time.Duration) {
	into := time.Since(start) % every
	if into >= every-stall {
		time.Sleep(every - into)
	}
}
