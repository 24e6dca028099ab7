// Package sqldb says where one database of the built-in target lives — a SQLite file in a
// directory (the default, no server to install), or a schema on a PostgreSQL server — and
// opens it with the settings its durability needs, so that the same SQL runs on both.
//
// Durability: SQLite runs in WAL mode with synchronous=FULL (a commit is fsynced before it
// returns); PostgreSQL sessions run with synchronous_commit=on (a commit returns once its WAL
// is flushed to disk on the server). Each database has one writer connection; readers use a
// separate read-only pool and see committed snapshots.
package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Limits and settings of a connection.
const (
	// busyTimeoutMS lets a SQLite reader wait out a WAL checkpoint instead of failing.
	busyTimeoutMS = 5_000
	// cacheKiB is SQLite's page cache per connection (its default, 2 MiB, rereads the accounts
	// of a 100k-account unit from the OS on every payment).
	cacheKiB = 16 << 10
	// connectTimeout bounds a PostgreSQL connection attempt when the DSN sets none.
	connectTimeout = 5 * time.Second
	// schemaBytesMax is PostgreSQL's identifier limit (NAMEDATALEN - 1).
	schemaBytesMax = 63
)

// Errors of the package.
var (
	ErrBadDSN     = errors.New("malformed PostgreSQL DSN")
	ErrBadSchema  = errors.New("malformed schema name")
	ErrConnect    = errors.New("cannot connect to PostgreSQL")
	ErrNoDatabase = errors.New("no such database")
)

// Place is where one database lives.
type Place struct {
	// Dir is the directory of the SQLite file, and the process's scratch directory on both
	// backends (a unit writes snapshot files there while it catches up).
	Dir string
	// File is the SQLite file's name in Dir.
	File string
	// DSN is the PostgreSQL server's connection string; empty means SQLite.
	DSN string
	// Schema is the PostgreSQL schema holding the database's tables, created on first open.
	Schema string
}

// SQLite returns the place of the SQLite file dir/file.
func SQLite(dir, file string) Place { return Place{Dir: dir, File: file} }

// Postgres says whether the database lives on PostgreSQL.
func (p Place) Postgres() bool { return p.DSN != "" }

// Named returns the place of a second, separate database beside p, named name (for example
// "shadow"): on SQLite the same file name in Dir/name, on PostgreSQL the schema
// <Schema>_<name> on the same server.
func (p Place) Named(name string) Place {
	q := p
	q.Dir = filepath.Join(p.Dir, name)
	if p.Postgres() {
		q.Schema = p.Schema + "_" + name
	}
	return q
}

// String describes the place without the DSN's password.
func (p Place) String() string {
	if p.Postgres() {
		return fmt.Sprintf("schema %s on %s", p.Schema, Redact(p.DSN))
	}
	return filepath.Join(p.Dir, p.File)
}

// Validate reports a place that cannot be opened.
func (p Place) Validate() error {
	if p.Dir == "" {
		return errors.New("a data dir is required")
	}
	if !p.Postgres() {
		if p.File == "" {
			return errors.New("a database file name is required")
		}
		return nil
	}
	if _, err := ParseDSN(p.DSN); err != nil {
		return err
	}
	return CheckSchema(p.Schema)
}

var schemaRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// CheckSchema accepts the schema names this package makes: lower-case letters, digits and
// underscores, at most 63 bytes (they are used unquoted in search_path).
func CheckSchema(name string) error {
	if !schemaRE.MatchString(name) || len(name) > schemaBytesMax {
		return fmt.Errorf("%w: %q: want [a-z_][a-z0-9_]*, at most %d bytes", ErrBadSchema, name, schemaBytesMax)
	}
	return nil
}

// Dialect returns the SQL dialect of the place.
func (p Place) Dialect() Dialect { return Dialect{postgres: p.Postgres()} }

// OpenWriter opens the database's one writer connection, creating the directory (and on
// PostgreSQL the schema) first.
func OpenWriter(ctx context.Context, p Place) (*sql.DB, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(p.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	db, err := open(p, false)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	if p.Postgres() {
		if _, err := db.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS `+p.Schema); err != nil {
			db.Close()
			return nil, fmt.Errorf("create schema %s: %w", p.Schema, connectErr(err))
		}
	}
	return db, nil
}

// OpenReaders opens a pool of at most n read-only connections to an existing database
// (ErrNoDatabase when there is none).
func OpenReaders(ctx context.Context, p Place, n int) (*sql.DB, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if !p.Postgres() {
		if _, err := os.Stat(filepath.Join(p.Dir, p.File)); err != nil {
			return nil, fmt.Errorf("open %s: %w: %w", p, ErrNoDatabase, err)
		}
	}
	db, err := open(p, true)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	if p.Postgres() {
		var found bool
		err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, p.Schema).Scan(&found)
		if err == nil && !found {
			err = ErrNoDatabase
		}
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("open %s: %w", p, connectErr(err))
		}
	}
	return db, nil
}

func open(p Place, readOnly bool) (*sql.DB, error) {
	if !p.Postgres() {
		db, err := sql.Open("sqlite", sqliteDSN(filepath.Join(p.Dir, p.File), readOnly))
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", p, err)
		}
		return db, nil
	}
	cfg, err := ParseDSN(p.DSN)
	if err != nil {
		return nil, err
	}
	cfg.RuntimeParams["search_path"] = p.Schema
	cfg.RuntimeParams["synchronous_commit"] = "on"
	// Each database's sessions name it, so an operator (or a test) can tell them apart in
	// pg_stat_activity: AppName.
	cfg.RuntimeParams["application_name"] = AppName(p.Schema)
	if readOnly {
		cfg.RuntimeParams["default_transaction_read_only"] = "on"
	}
	return stdlib.OpenDB(*cfg), nil
}

// AppName is the application_name of the PostgreSQL sessions of the database in schema (the
// server cuts it at 63 bytes; the target's schema names leave room for the "redline:").
func AppName(schema string) string { return "redline:" + schema }

func sqliteDSN(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS))
	q.Add("_pragma", fmt.Sprintf("cache_size(%d)", -cacheKiB))
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_txlock", "immediate")
	}
	return "file:" + path + "?" + q.Encode()
}

// ParseDSN parses a PostgreSQL connection string (URL or key=value form); its error never
// carries the password.
func ParseDSN(dsn string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrBadDSN, Redact(err.Error()))
	}
	if !strings.Contains(dsn, "connect_timeout") {
		cfg.ConnectTimeout = connectTimeout
	}
	return cfg, nil
}

// Check connects to the server at dsn once: ErrBadDSN when dsn does not parse, ErrConnect
// when no server accepts the connection (down, refused, authentication failed).
func Check(ctx context.Context, dsn string) error {
	conn, err := connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `SELECT 1`); err != nil {
		return fmt.Errorf("query %s: %w", Redact(dsn), connectErr(err))
	}
	return nil
}

// connectErr marks the errors of a server that refused or never answered the connection
// (ErrConnect), and strips passwords from the message.
func connectErr(err error) error {
	if err == nil || errors.Is(err, ErrNoDatabase) {
		return err
	}
	out := err
	if msg := err.Error(); Redact(msg) != msg {
		out = errors.New(Redact(msg))
	}
	if ce := (*pgconn.ConnectError)(nil); errors.As(err, &ce) {
		return fmt.Errorf("%w: %w", ErrConnect, out)
	}
	return out
}

var (
	kvPassword   = regexp.MustCompile(`password\s*=\s*('(\\.|[^'])*'|[^\s&]*)`)
	userinfoPass = regexp.MustCompile(`(://[^:/@\s]*):[^@/\s]*@`)
)

// Redact returns s (a DSN, or a message quoting one) with every password replaced by xxxxx.
func Redact(s string) string {
	if u, err := url.Parse(s); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		if q := u.Query(); q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	s = kvPassword.ReplaceAllString(s, "password=xxxxx")
	return userinfoPass.ReplaceAllString(s, "${1}:xxxxx@")
}
