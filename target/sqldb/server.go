package sqldb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"
)

// ServerFile is the file in a target's data dir that records the PostgreSQL server its
// databases live on (mode 0600: the DSN may carry a password). Without it, they are SQLite
// files in the data dir.
const ServerFile = "postgres.json"

// PrefixBase begins every schema name a target makes.
const PrefixBase = "paycell_"

// Server is where a target keeps its databases: SQLite files in its data dir (the zero
// Server), or schemas named <Prefix>_<kind>_<name>... on the PostgreSQL server at DSN.
type Server struct {
	DSN string `json:"dsn"`
	// Prefix is "paycell_" and an id drawn at random when the data dir first met the server,
	// so that two targets on one server never share a schema.
	Prefix string `json:"prefix"`
}

// NewServer returns a Server on dsn with a fresh prefix.
func NewServer(dsn string) Server {
	b := make([]byte, 5)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return Server{DSN: dsn, Prefix: PrefixBase + hex.EncodeToString(b)}
}

// Postgres says whether the databases live on PostgreSQL.
func (s Server) Postgres() bool { return s.DSN != "" }

// Place returns the place of the database named by parts ("unit", "a", "r1"): the SQLite file
// dir/file, or the schema <Prefix>_unit_a_r1.
func (s Server) Place(dir, file string, parts ...string) Place {
	p := Place{Dir: dir, File: file}
	if s.Postgres() {
		p.DSN, p.Schema = s.DSN, s.Prefix+"_"+strings.Join(parts, "_")
	}
	return p
}

// ReadServer reads dataDir's ServerFile; the zero Server (SQLite) when there is none.
func ReadServer(dataDir string) (Server, error) {
	var s Server
	b, err := os.ReadFile(filepath.Join(dataDir, ServerFile))
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("read %s: %w", ServerFile, err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return Server{}, fmt.Errorf("read %s: %w", ServerFile, err)
	}
	if _, err := ParseDSN(s.DSN); err != nil {
		return Server{}, fmt.Errorf("read %s: %w", ServerFile, err)
	}
	if err := CheckSchema(s.Prefix); err != nil || !strings.HasPrefix(s.Prefix, PrefixBase) {
		return Server{}, fmt.Errorf("read %s: prefix %q: %w", ServerFile, s.Prefix, ErrBadSchema)
	}
	return s, nil
}

// WriteServer records s in dataDir's ServerFile, mode 0600, replacing it atomically.
func WriteServer(dataDir string, s Server) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", ServerFile, err)
	}
	tmp, err := os.CreateTemp(dataDir, ServerFile+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", ServerFile, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync() // CreateTemp's mode is already 0600
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dataDir, ServerFile))
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", ServerFile, err)
	}
	return nil
}

// Schemas lists the schemas on the server whose names begin with prefix + "_".
func Schemas(ctx context.Context, dsn, prefix string) ([]string, error) {
	if err := CheckSchema(prefix); err != nil {
		return nil, err
	}
	conn, err := connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `SELECT nspname FROM pg_namespace WHERE left(nspname, $1) = $2 ORDER BY nspname`,
		len(prefix)+1, prefix+"_")
	if err != nil {
		return nil, fmt.Errorf("list schemas: %w", connectErr(err))
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list schemas: %w", connectErr(err))
	}
	return names, nil
}

// DropSchemas drops every schema of prefix (Schemas) with its tables: what a test made.
func DropSchemas(ctx context.Context, dsn, prefix string) error {
	names, err := Schemas(ctx, dsn, prefix)
	if err != nil {
		return err
	}
	conn, err := connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, n := range names {
		if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{n}.Sanitize()+` CASCADE`); err != nil {
			return fmt.Errorf("drop schema %s: %w", n, connectErr(err))
		}
	}
	return nil
}

func connect(ctx context.Context, dsn string) (*pgx.Conn, error) {
	cfg, err := ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", Redact(dsn), connectErr(err))
	}
	return conn, nil
}
