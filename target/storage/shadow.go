package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/redline-dev/redline/target/sqldb"
)

// MetaShadowLeaks counts the stress writes this replica's production database took (each
// counted in the transaction that wrote it, so the figure is exact across kills): any is a leak.
const MetaShadowLeaks = "shadow_leaks"

// ShadowDir is the directory of a replica's shadow database, inside the replica's directory:
// the shadow plane's books, history and outbox, beside the production ones and never mixed
// with them. On PostgreSQL the shadow database is the schema named like production's plus
// ShadowSchemaSuffix.
const (
	ShadowDir          = "shadow"
	ShadowSchemaSuffix = "_shadow"
)

// ShadowPlace is the place of the shadow database beside the production one at p: the one
// rule of where shadow data lives (units and consumer groups alike).
func ShadowPlace(p sqldb.Place) sqldb.Place {
	p.Dir = filepath.Join(p.Dir, ShadowDir)
	if p.Schema != "" {
		p.Schema += ShadowSchemaSuffix
	}
	return p
}

// MetaNum reads one numeric meta value through the read pool; a value never written is 0.
func (db *DB) MetaNum(ctx context.Context, name string) (int64, error) {
	var n int64
	err := db.r.QueryRowContext(ctx, `SELECT num FROM meta WHERE name = $1`, name).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read meta %s: %w", name, err)
	}
	return n, nil
}
