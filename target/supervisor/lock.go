package supervisor

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockFile is the data dir's lock: one supervisor at a time uses a data dir.
const lockFile = "supervisor.lock"

// lockDataDir takes an exclusive lock on dir (flock on DATA/supervisor.lock, which records the
// holder's pid) before anything in dir is written, so that a second target on a data dir a
// running one uses changes nothing: not its admin token, not its topology, not its databases.
// The kernel drops the lock with its holder, so a stale lock of a dead process never blocks.
func lockDataDir(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644) // close-on-exec: no child holds it
	if err != nil {
		return nil, fmt.Errorf("open lock of data dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: data dir %s is in use by pid %s", ErrDataDirInUse, dir, holder(path))
		}
		return nil, fmt.Errorf("lock data dir %s: %w", dir, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0) // informative only
	}
	return func() { f.Close() }, nil // closing the descriptor releases the lock
}

// holder reads the pid a lock file records, "unknown" when it cannot.
func holder(path string) string {
	b, err := os.ReadFile(path)
	if pid := strings.TrimSpace(string(b)); err == nil && pid != "" {
		return pid
	}
	return "unknown"
}

// listen listens on addr; an address another process holds is ErrAddrInUse.
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("%w: %s is taken by another process", ErrAddrInUse, addr)
	}
	return ln, err
}

// checkFree fails when a fixed address (not "", not port 0) is taken, before anything starts:
// the router, a child process, would otherwise crash-loop on it while another server answers
// there.
func checkFree(addr string) error {
	if addr == "" {
		return nil
	}
	if _, port, err := net.SplitHostPort(addr); err == nil && port == "0" {
		return nil
	}
	ln, err := listen(addr)
	if err != nil {
		return err
	}
	return ln.Close()
}
