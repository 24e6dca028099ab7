package freeport

import (
	"errors"
	"net"
	"strconv"
	"syscall"
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

func TestRefusing(t *testing.T) {
	addr, release, err := Refusing()
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatalf("a connection to %s was accepted", addr)
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial %s: %v, want connection refused", addr, err)
	}
	if ln, err := net.Listen("tcp", addr); err == nil {
		ln.Close()
		t.Errorf("%s could be listened on while held", addr)
	}
}
