package sqldb

import (
	"database/sql"
	"strconv"
	"strings"
)

// Dialect is what differs between SQLite and PostgreSQL in the statements the target runs;
// everything else is one SQL: $N placeholders, BIGINT and TEXT columns, ON CONFLICT, count and
// sum, CREATE TEMP TABLE.
type Dialect struct{ postgres bool }

// Dialects are SQLite's and PostgreSQL's, for what is built once per dialect.
func Dialects() []Dialect { return []Dialect{{}, {postgres: true}} }

// Postgres says whether the dialect is PostgreSQL's.
func (d Dialect) Postgres() bool { return d.postgres }

// Schema translates a schema statement written for SQLite: PostgreSQL says BIGINT PRIMARY KEY
// where SQLite says INTEGER PRIMARY KEY (SQLite's rowid, a 64-bit integer, one b-tree instead
// of two), and has no WITHOUT ROWID (SQLite's table stored by its key).
func (d Dialect) Schema(stmt string) string {
	if !d.postgres {
		return stmt
	}
	stmt = strings.ReplaceAll(stmt, "INTEGER PRIMARY KEY", "BIGINT PRIMARY KEY")
	return strings.ReplaceAll(stmt, " WITHOUT ROWID", "")
}

// Param is the i-th placeholder (from 1) of a statement built at run time. SQLite resolves
// "$i" by name, a scan per parameter that makes an 800-parameter insert quadratic, so it gets
// "?" (positional); PostgreSQL knows only "$i".
func (d Dialect) Param(i int) string {
	if d.postgres {
		return "$" + strconv.Itoa(i)
	}
	return "?"
}

// BeginWrite is the statement that starts a writer's transaction: SQLite's takes the database's
// write lock at once (IMMEDIATE), so that a transaction never fails half-way for want of it;
// PostgreSQL locks rows as it goes.
func (d Dialect) BeginWrite() string {
	if d.postgres {
		return "BEGIN"
	}
	return "BEGIN IMMEDIATE"
}

// ReadTx are the options of a reader's transaction whose statements must all see one
// committed state: PostgreSQL's default (read committed) takes a snapshot per statement, so
// it asks for repeatable read; SQLite's WAL reader keeps one snapshot anyway and ignores it.
var ReadTx = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
