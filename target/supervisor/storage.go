package supervisor

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/redline-dev/redline/target/consumer"
	"github.com/redline-dev/redline/target/sqldb"
	"github.com/redline-dev/redline/target/storage"
)

// checkTimeout bounds the connection check of a PostgreSQL server at start.
const checkTimeout = 10 * time.Second

// ErrStorage says the databases' server cannot be used (down, refusing, wrong credentials).
var ErrStorage = errors.New("storage server unusable")

// Postgres is the PostgreSQL server of a target in topology.json (its DSN without password).
type Postgres struct {
	DSN string `json:"dsn"`
	// Prefix begins every schema of the target: <prefix>_unit_<unit>_<replica>,
	// <prefix>_consumer_<group>.
	Prefix string `json:"prefix"`
}

// resolveServer decides where the target's databases live, before anything is created: SQLite
// files in the data dir, or schemas on the PostgreSQL server of cfg.DSN or of the one the data
// dir recorded (DATA/postgres.json) when it first ran with --dsn. The server must accept a
// connection now: a malformed DSN is ErrInvalidConfig, a server that cannot be used ErrStorage.
func resolveServer(ctx context.Context, cfg Config) (sqldb.Server, error) {
	srv, err := sqldb.ReadServer(cfg.DataDir)
	if err != nil {
		return srv, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if cfg.DSN != "" {
		if !srv.Postgres() && holdsSQLite(cfg.DataDir) {
			return srv, fmt.Errorf("%w: %s holds SQLite databases: run with --dsn on a fresh data dir", ErrInvalidConfig, cfg.DataDir)
		}
		if srv.Prefix == "" {
			srv = sqldb.NewServer(cfg.DSN)
		}
		srv.DSN = cfg.DSN // the recorded prefix stays: the schemas are the data dir's
	}
	if !srv.Postgres() {
		return srv, nil
	}
	cctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	if err := sqldb.Check(cctx, srv.DSN); errors.Is(err, sqldb.ErrBadDSN) {
		return srv, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	} else if err != nil {
		return srv, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	return srv, nil
}

// holdsSQLite says whether a unit or consumer group of dataDir has a SQLite database.
func holdsSQLite(dataDir string) bool {
	for _, pattern := range []string{
		filepath.Join(dataDir, "units", "*", "*", storage.FileName),
		filepath.Join(dataDir, "consumers", "*", consumer.FileName),
	} {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			return true
		}
	}
	return false
}

// place is where p's database lives (unit replicas and consumer groups have one).
func (s *supervisor) place(p *proc) sqldb.Place {
	if p.role == RoleConsumer {
		return s.srv.Place(p.dataDir, consumer.FileName, "consumer", p.unit)
	}
	return s.srv.Place(p.dataDir, storage.FileName, "unit", p.unit, p.replica)
}

// storageArgs are the flags that put p's database on PostgreSQL (none for SQLite).
func (s *supervisor) storageArgs(p *proc) []string {
	if !s.srv.Postgres() {
		return nil
	}
	return []string{"--dsn", s.srv.DSN, "--schema", s.place(p).Schema}
}

// redactArgs returns args with the value of --dsn without its password, for logs.
func redactArgs(args []string) []string {
	out := make([]string, len(args))
	copy(out, args)
	for i := 1; i < len(out); i++ {
		if out[i-1] == "--dsn" {
			out[i] = sqldb.Redact(out[i])
		}
	}
	return out
}
