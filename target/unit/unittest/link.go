package unittest

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Link is an HTTP hop between a primary and its standby that a test can pause: held requests
// wait until Resume or until their sender gives up (a slow or partitioned standby).
type Link struct {
	srv *httptest.Server

	mu     sync.Mutex
	target string
	paused chan struct{} // non-nil while paused; closed by Resume
}

func newLink(t testing.TB) *Link {
	l := &Link{}
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		l.mu.Lock()
		u := &url.URL{Scheme: "http", Host: l.target}
		l.mu.Unlock()
		r.SetURL(u)
	}, ErrorLog: log.New(io.Discard, "", 0)} // a held request's sender giving up is expected
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		gate := l.paused
		l.mu.Unlock()
		if gate != nil {
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { l.Resume(); l.srv.Close() })
	return l
}

// Addr is the link's host:port (what the primary is told the standby is).
func (l *Link) Addr() string { return strings.TrimPrefix(l.srv.URL, "http://") }

func (l *Link) setTarget(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.target = addr
}

// Pause holds every request from now on.
func (l *Link) Pause() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.paused == nil {
		l.paused = make(chan struct{})
	}
}

// Resume lets held and later requests through.
func (l *Link) Resume() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.paused != nil {
		close(l.paused)
		l.paused = nil
	}
}
