package corezone

import (
	"context"
	"net"
	"net/http"
	"testing"
)

// A killed primary's port refuses at once, which fails it over after refusalsMax polls; a
// paused one still accepts and times out, which counts only towards failuresMax.
func TestProbeRefusedOnlyWhenNothingListens(t *testing.T) {
	n := &node{http: &http.Client{}}
	gone, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	goneAddr := gone.Addr().String()
	gone.Close()
	if _, err := n.probe(context.Background(), goneAddr); !refused(err) {
		t.Fatalf("probe of a closed port: %v, want a refused connection", err)
	}

	paused, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer paused.Close()
	go func() { // accepts like the kernel does for a stopped process, never answers
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := paused.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	_, err = n.probe(context.Background(), paused.Addr().String())
	if err == nil || refused(err) {
		t.Fatalf("probe of a listener that never answers: %v, want a timeout, not a refusal", err)
	}
}
