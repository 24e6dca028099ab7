package supervisor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redline-dev/redline/target/freeport"
	"github.com/redline-dev/redline/target/sqldb"
	"github.com/redline-dev/redline/target/sqldb/sqldbtest"
	"github.com/redline-dev/redline/target/storage"
)

// TestResolveServer: where a start puts the databases, from --dsn and what the data dir
// recorded, and how a bad DSN or a server that is down is refused before anything is created.
func TestResolveServer(t *testing.T) {
	ctx := context.Background()
	addr, release, err := freeport.Refusing()
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	down := "postgres://u:s3cret@" + addr + "/db?connect_timeout=2"
	t.Run("sqlite", func(t *testing.T) {
		srv, err := resolveServer(ctx, Config{DataDir: t.TempDir()})
		if err != nil || srv.Postgres() {
			t.Errorf("no --dsn, nothing recorded: %+v %v, want SQLite", srv, err)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		_, err := resolveServer(ctx, Config{DataDir: dir, DSN: "postgres://u:s3cret@h:port/db"})
		if !errors.Is(err, ErrInvalidConfig) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("malformed DSN: %v, want ErrInvalidConfig without the password", err)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Error("the data dir was created")
		}
	})
	t.Run("down", func(t *testing.T) {
		_, err := resolveServer(ctx, Config{DataDir: t.TempDir(), DSN: down})
		if !errors.Is(err, ErrStorage) || errors.Is(err, ErrInvalidConfig) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("server down: %v, want ErrStorage without the password", err)
		}
	})
	t.Run("sqlite data dir", func(t *testing.T) {
		dir := t.TempDir()
		db := filepath.Join(dir, "units", "a", "r1", storage.FileName)
		if err := os.MkdirAll(filepath.Dir(db), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(db, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := resolveServer(ctx, Config{DataDir: dir, DSN: down}); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("--dsn on a data dir of SQLite databases: %v, want ErrInvalidConfig", err)
		}
	})
	t.Run("recorded", func(t *testing.T) {
		dsn := sqldbtest.DSN(t)
		dir := t.TempDir()
		first, err := resolveServer(ctx, Config{DataDir: dir, DSN: dsn})
		if err != nil || first.DSN != dsn || !strings.HasPrefix(first.Prefix, sqldb.PrefixBase) {
			t.Fatalf("fresh data dir with --dsn: %+v %v", first, err)
		}
		if err := sqldb.WriteServer(dir, first); err != nil { // as prepare does
			t.Fatal(err)
		}
		again, err := resolveServer(ctx, Config{DataDir: dir})
		if err != nil || again != first {
			t.Errorf("restart without --dsn: %+v %v, want the recorded %+v", again, err, first)
		}
		moved, err := resolveServer(ctx, Config{DataDir: dir, DSN: down})
		if !errors.Is(err, ErrStorage) || moved.Prefix != first.Prefix {
			t.Errorf("restart with another --dsn: %+v %v, want its check, and the recorded prefix", moved, err)
		}
	})
}

func TestRedactArgs(t *testing.T) {
	args := []string{"target", "proc", "unit", "--dsn", "postgres://u:s3cret@h/db", "--schema", "paycell_x_unit_a_r1"}
	got := strings.Join(redactArgs(args), " ")
	if strings.Contains(got, "s3cret") || !strings.Contains(got, "postgres://u:xxxxx@h/db") || args[4] != "postgres://u:s3cret@h/db" {
		t.Errorf("redactArgs = %q (args now %q)", got, args)
	}
}
