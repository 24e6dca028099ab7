//go:build unix

package freeport

import (
	"fmt"
	"net"
	"strconv"
	"syscall"
)

// Refusing returns a loopback address where nothing listens and nothing else can until
// release is called: a TCP socket bound to it that never listens, so a connection there is
// refused at once. For tests of a server that is down; a port merely closed after use may be
// taken again by another process before the test connects.
func Refusing() (addr string, release func(), err error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		return "", nil, fmt.Errorf("socket: %w", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		return "", nil, fmt.Errorf("bind: %w", err)
	}
	sa, err := syscall.Getsockname(fd)
	in4, ok := sa.(*syscall.SockaddrInet4)
	if err != nil || !ok {
		syscall.Close(fd)
		return "", nil, fmt.Errorf("bound address %v: %v", sa, err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(in4.Port)), func() { syscall.Close(fd) }, nil
}
