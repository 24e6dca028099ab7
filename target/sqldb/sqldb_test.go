package sqldb_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/redline-dev/redline/target/freeport"
	"github.com/redline-dev/redline/target/sqldb"
	"github.com/redline-dev/redline/target/sqldb/sqldbtest"
)

func TestRedact(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"url", "postgres://bob:s3cret@127.0.0.1:5432/db?sslmode=disable", "postgres://bob:xxxxx@127.0.0.1:5432/db?sslmode=disable"},
		{"url without password", "postgres://bob@127.0.0.1/db", "postgres://bob@127.0.0.1/db"},
		{"url password param", "postgresql://127.0.0.1/db?password=s3cret&user=bob", "postgresql://127.0.0.1/db?password=xxxxx&user=bob"},
		{"key value", "host=127.0.0.1 user=bob password=s3cret dbname=db", "host=127.0.0.1 user=bob password=xxxxx dbname=db"},
		{"key value quoted", "host=h password='a b\\'c' dbname=db", "host=h password=xxxxx dbname=db"},
		{"message quoting a url", "cannot parse `postgres://bob:s3cret@h:bad/db`: invalid port", "cannot parse `postgres://bob:xxxxx@h:bad/db`: invalid port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := sqldb.Redact(tt.in)
			if got != tt.want {
				t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if strings.Contains(got, "s3cret") {
				t.Errorf("Redact(%q) leaks the password: %q", tt.in, got)
			}
		})
	}
}

func TestPlaces(t *testing.T) {
	srv := sqldb.Server{DSN: "postgres://u:pw@127.0.0.1/db", Prefix: "paycell_0123456789"}
	got := []sqldb.Place{
		sqldb.Server{}.Place("/d/units/a/r1", "unit.db", "unit", "a", "r1"),
		sqldb.Server{}.Place("/d/units/a/r1", "unit.db", "unit", "a", "r1").Named("shadow"),
		srv.Place("/d/units/a/r1", "unit.db", "unit", "a", "r1"),
		srv.Place("/d/units/a/r1", "unit.db", "unit", "a", "r1").Named("shadow"),
	}
	want := []sqldb.Place{
		{Dir: "/d/units/a/r1", File: "unit.db"},
		{Dir: "/d/units/a/r1/shadow", File: "unit.db"},
		{Dir: "/d/units/a/r1", File: "unit.db", DSN: srv.DSN, Schema: "paycell_0123456789_unit_a_r1"},
		{Dir: "/d/units/a/r1/shadow", File: "unit.db", DSN: srv.DSN, Schema: "paycell_0123456789_unit_a_r1_shadow"},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("places (-got +want):\n%s", diff)
	}
	for _, p := range got {
		if err := p.Validate(); err != nil {
			t.Errorf("%v: %v", p, err)
		}
		if strings.Contains(p.String(), "pw") {
			t.Errorf("String() leaks the password: %s", p)
		}
	}
	for _, bad := range []string{"", "Upper", "semi;colon", "1digit", strings.Repeat("a", 64)} {
		if err := sqldb.CheckSchema(bad); !errors.Is(err, sqldb.ErrBadSchema) {
			t.Errorf("CheckSchema(%q) = %v, want ErrBadSchema", bad, err)
		}
	}
	a, b := sqldb.NewServer("postgres://h/db"), sqldb.NewServer("postgres://h/db")
	if a.Prefix == b.Prefix || sqldb.CheckSchema(a.Prefix) != nil {
		t.Errorf("prefixes %q and %q: want distinct valid names", a.Prefix, b.Prefix)
	}
}

func TestServerFile(t *testing.T) {
	dir := t.TempDir()
	if s, err := sqldb.ReadServer(dir); err != nil || s.Postgres() {
		t.Fatalf("no file: %+v %v, want the zero Server", s, err)
	}
	want := sqldb.NewServer("postgres://u:pw@127.0.0.1:5432/db")
	if err := sqldb.WriteServer(dir, want); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, sqldb.ServerFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v %v, want 0600", fi.Mode().Perm(), err)
	}
	got, err := sqldb.ReadServer(dir)
	if err != nil || got != want {
		t.Errorf("read back %+v %v, want %+v", got, err, want)
	}
	for _, bad := range []string{`{`, `{"dsn": "postgres://h:x/db", "prefix": "paycell_1"}`, `{"dsn": "postgres://h/db", "prefix": "x; DROP"}`} {
		if err := os.WriteFile(filepath.Join(dir, sqldb.ServerFile), []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := sqldb.ReadServer(dir); err == nil {
			t.Errorf("ReadServer accepted %s", bad)
		}
	}
}

func TestCheck(t *testing.T) {
	ctx := context.Background()
	if err := sqldb.Check(ctx, "postgres://u:s3cret@127.0.0.1:notaport/db"); !errors.Is(err, sqldb.ErrBadDSN) || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("malformed DSN: %v, want ErrBadDSN without the password", err)
	}
	addr, release, err := freeport.Refusing()
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if err := sqldb.Check(ctx, "postgres://u:s3cret@"+addr+"/db?connect_timeout=2"); !errors.Is(err, sqldb.ErrConnect) || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("server down: %v, want ErrConnect without the password", err)
	}
}

func TestPostgresServer(t *testing.T) {
	srv := sqldbtest.Postgres(t)
	ctx := context.Background()
	if err := sqldb.Check(ctx, srv.DSN); err != nil {
		t.Fatal(err)
	}
	p := srv.Place(t.TempDir(), "", "unit", "a", "r1")
	if _, err := sqldb.OpenReaders(ctx, p, 1); !errors.Is(err, sqldb.ErrNoDatabase) {
		t.Errorf("readers of a missing schema: %v, want ErrNoDatabase", err)
	}
	for _, q := range []sqldb.Place{p, p.Named("shadow")} {
		w, err := sqldb.OpenWriter(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	names, err := sqldb.Schemas(ctx, srv.DSN, srv.Prefix)
	if want := []string{p.Schema, p.Schema + "_shadow"}; err != nil || !cmp.Equal(names, want) {
		t.Errorf("schemas = %v %v, want %v", names, err, want)
	}
	if err := sqldb.DropSchemas(ctx, srv.DSN, srv.Prefix); err != nil {
		t.Fatal(err)
	}
	if names, err := sqldb.Schemas(ctx, srv.DSN, srv.Prefix); err != nil || len(names) != 0 {
		t.Errorf("schemas after drop = %v %v, want none", names, err)
	}
}
