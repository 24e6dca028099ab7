// Package freeport picks a free TCP port for a process to listen on, below the kernel's
// ephemeral range when there is room. A port the kernel hands out for port 0 is also what it
// picks as the local port of outgoing connections: a process started (or restarted) on such a
// port may find it taken by some other process's connection.
package freeport

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

const (
	tries        = 200
	lowest       = 10_000
	ephemeralLow = 32_768 // Linux's default, when /proc says nothing
)

// Listen listens on a free port of host below the ephemeral range, or on any free port when
// that fails.
func Listen(host string) (net.Listener, error) {
	if low := ephemeralStart(); low-lowest >= tries {
		for range tries {
			port := lowest + rand.IntN(low-lowest)
			if ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port))); err == nil {
				return ln, nil
			}
		}
	}
	return net.Listen("tcp", net.JoinHostPort(host, "0"))
}

// ephemeralStart is the first port of the kernel's ephemeral range.
func ephemeralStart() int {
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				return n
			}
		}
	}
	return ephemeralLow
}
