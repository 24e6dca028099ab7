package profiling

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestLoopbackOnly(t *testing.T) {
	mux := http.NewServeMux()
	Register(mux)
	for _, tc := range []struct {
		name, remote string
		want         int
	}{
		{"IPv4 loopback", "127.0.0.1:40000", http.StatusOK},
		{"IPv6 loopback", "[::1]:40000", http.StatusOK},
		{"another host", "10.1.2.3:40000", http.StatusForbidden},
		{"no port", "127.0.0.1", http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/debug/pprof/", nil)
			req.RemoteAddr = tc.remote
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			if got := rec.Code; got != tc.want {
				t.Errorf("GET /debug/pprof/ from %s: status %d, want %d", tc.remote, got, tc.want)
			}
		})
	}
}
