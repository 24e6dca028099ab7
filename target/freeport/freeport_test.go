package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestListenBelowTheEphemeralRange(t *testing.T) {
	low, seen := ephemeralStart(), map[string]bool{}
	for range 20 {
		ln, err := Listen("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		addr := ln.Addr().String()
		_, p, _ := net.SplitHostPort(addr)
		port, _ := strconv.Atoi(p)
		if port < lowest || port >= low {
			t.Errorf("port %d, want it in [%d, %d)", port, lowest, low)
		}
		if seen[addr] {
			t.Errorf("%s handed out twice while held", addr)
		}
		seen[addr] = true
	}
}
