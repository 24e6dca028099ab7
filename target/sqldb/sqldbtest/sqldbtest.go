// Package sqldbtest gives tests the storage backends to run on: SQLite always, PostgreSQL when
// $REDLINE_TEST_DSN names a server (scripts/pg.sh starts a throwaway one). Without it the
// PostgreSQL tests skip, unless $REDLINE_REQUIRE_PG=1 (scripts/test.sh sets it): then they fail.
package sqldbtest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/redline-dev/redline/target/sqldb"
)

// The environment of the tests.
const (
	EnvDSN     = "REDLINE_TEST_DSN"
	EnvRequire = "REDLINE_REQUIRE_PG"
)

// dropTimeout bounds the cleanup of a test's schemas.
const dropTimeout = 30 * time.Second

// DSN returns the test server's DSN, or skips the test when none is set (fails it when
// $REDLINE_REQUIRE_PG=1).
func DSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvDSN)
	if dsn == "" {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("$%s is not set and $%s=1: start a server with scripts/pg.sh", EnvDSN, EnvRequire)
		}
		t.Skipf("PostgreSQL test: $%s is not set (eval \"$(scripts/pg.sh start)\")", EnvDSN)
	}
	return dsn
}

// Postgres returns a Server on the test server with a fresh prefix; every schema of the prefix
// is dropped when the test ends.
func Postgres(t testing.TB) sqldb.Server {
	t.Helper()
	s := sqldb.NewServer(DSN(t))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), dropTimeout)
		defer cancel()
		if err := sqldb.DropSchemas(ctx, s.DSN, s.Prefix); err != nil {
			t.Errorf("drop the test's schemas: %v", err)
		}
	})
	return s
}

// Backend is one storage backend a test runs on.
type Backend struct {
	Name   string
	server func(testing.TB) sqldb.Server
}

// Server returns where the test's databases live on this backend (the zero Server: SQLite
// files in the test's directories).
func (b Backend) Server(t testing.TB) sqldb.Server {
	t.Helper()
	return b.server(t)
}

// Backends are SQLite and PostgreSQL, for tests table-driven over both.
func Backends() []Backend {
	return []Backend{
		{Name: "sqlite", server: func(testing.TB) sqldb.Server { return sqldb.Server{} }},
		{Name: "postgres", server: Postgres},
	}
}
