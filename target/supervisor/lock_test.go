package supervisor

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// TestADataDirInUseIsRefused: a second target on a data dir a running one holds changes nothing
// (its admin token above all) and says who holds it; the lock goes with its holder.
func TestADataDirInUseIsRefused(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	token := filepath.Join(dir, tokenFile)
	if err := os.WriteFile(token, []byte("running-target\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = Run(context.Background(), Config{Units: 1, DataDir: dir, Admin: "127.0.0.1:0", Listen: "127.0.0.1:0", Exe: "/nonexistent"})
	if !errors.Is(err, ErrDataDirInUse) || !strings.Contains(err.Error(), "in use by pid "+strconv.Itoa(os.Getpid())) {
		t.Errorf("Run on a locked data dir = %v, want ErrDataDirInUse naming pid %d", err, os.Getpid())
	}
	if b, _ := os.ReadFile(token); string(b) != "running-target\n" {
		t.Errorf("admin.token rewritten: %q", b)
	}
	unlock()
	again, err := lockDataDir(dir) // released: the next one takes it
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again()
}

// TestATakenAddressIsRefusedFirst: a fixed router or admin address another process holds
// refuses the start at once, before anything is written in the data dir.
func TestATakenAddressIsRefusedFirst(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, tc := range []struct {
		name   string
		listen string
		admin  string
	}{
		{"router", taken.Addr().String(), "127.0.0.1:0"},
		{"admin", "127.0.0.1:0", taken.Addr().String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			err := Run(context.Background(), Config{Units: 1, DataDir: dir, Admin: tc.admin, Listen: tc.listen, Exe: "/nonexistent"})
			if !errors.Is(err, ErrAddrInUse) {
				t.Fatalf("Run = %v, want ErrAddrInUse", err)
			}
			if _, err := os.Stat(filepath.Join(dir, tokenFile)); !os.IsNotExist(err) {
				t.Errorf("admin.token written: %v", err)
			}
		})
	}
}

// TestReadyOnlyWhenOurRouterAnswers: another server answering 200 on the router's address is
// not the router.
func TestReadyOnlyWhenOurRouterAnswers(t *testing.T) {
	var pid atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"status":"ok","pid":` + strconv.FormatInt(pid.Load(), 10) + `}`))
	}))
	defer srv.Close()
	s := &supervisor{http: srv.Client()}
	p := &proc{role: RoleRouter, addr: strings.TrimPrefix(srv.URL, "http://"), pid: 4242, up: true}
	for _, tc := range []struct {
		name    string
		pid     int
		wantErr error
	}{
		{"our router", 4242, nil},
		{"another server", 99, ErrAddrInUse},
		{"a server without pid", 0, ErrAddrInUse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pid.Store(int64(tc.pid))
			pr := s.probe(context.Background(), p)
			if !errors.Is(pr.err, tc.wantErr) || (tc.wantErr == nil) != (pr.err == nil) {
				t.Errorf("probe = %v, want %v", pr.err, tc.wantErr)
			}
		})
	}
}
