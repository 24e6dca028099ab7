// Package unit is one replica of a paycell unit: the business endpoints (accounts and payments
// of the unit's buckets), synchronous replication from the primary to its standby with group
// commit on both sides, epoch fencing, catch-up of a restarted replica, the control endpoints the
// core zone and the supervisor call, the audit figures, and Prometheus metrics.
//
// The design is primary-backup with an external configuration master (PacificA): the primary
// commits a batch locally, ships it to the standby, and acknowledges its payments only after the
// standby committed it (synchronous=FULL on both sides). The standby refuses batches from any
// epoch older than its own, so a primary that was replaced without knowing it can never
// acknowledge again. target/PROTOCOL.md is the contract; Run is the entry point.
package unit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"

	"github.com/redline-dev/redline/shadow"
	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/sqldb"
	"github.com/redline-dev/redline/target/storage"
)

// Defect is a seeded defect: a switch that breaks one guarantee, so the audit can prove it sees it.
type Defect string

// The seeded defects a unit knows.
const (
	// DefectAsyncReplication acknowledges a payment before the standby has it.
	DefectAsyncReplication Defect = "async-replication"
	// DefectNoFencing makes replicas accept writes and replication under a stale epoch.
	DefectNoFencing Defect = "no-fencing"
	// DefectForgetfulDedup stops consulting idempotency records written before this process
	// started or was promoted, so a retry after a restart or failover charges again.
	DefectForgetfulDedup Defect = "forgetful-dedup"
	// DefectPublishBeforeCommit publishes a batch's events before its transaction commits.
	DefectPublishBeforeCommit Defect = "publish-before-commit"
	// DefectTCCNoFencing accepts the steps of cross-unit transfers (try, confirm, cancel) under a
	// stale epoch: a core zone leader with an out-of-date view moves money on a replica that
	// has already seen a newer configuration.
	DefectTCCNoFencing Defect = "tcc-no-fencing"
	// DefectShadowMisroute sends one marked (stress) write in a thousand to the production
	// database instead of the shadow one.
	DefectShadowMisroute Defect = "shadow-misroute"
)

// Defects lists every defect a unit knows, for flags and docs.
func Defects() []Defect {
	return []Defect{DefectAsyncReplication, DefectNoFencing, DefectForgetfulDedup, DefectPublishBeforeCommit, DefectTCCNoFencing, DefectShadowMisroute}
}

// Errors of the unit.
var (
	ErrInvalidConfig = errors.New("invalid unit config")
	ErrStaleEpoch    = errors.New("stale epoch")
	ErrNotPrimary    = errors.New("not primary")
	ErrNotStandby    = errors.New("not standby")
	ErrFenced        = errors.New("fenced: replaced by a newer epoch")
	ErrSeqGap        = errors.New("replication gap")
	ErrDiverged      = errors.New("replica history diverged")
	ErrStopped       = errors.New("unit stopped")
	ErrHalted        = errors.New("unit halted: its state in memory may disagree with its database")

	// Client errors of the HTTP layer.
	errBadJSON      = errors.New("malformed JSON")
	errMissingField = errors.New("missing field")
	errBodyTooLarge = errors.New("body too large")
	errBadEpoch     = errors.New("malformed epoch header")
	errBadPath      = errors.New("malformed path parameter")
)

// Config is what a unit replica needs to start. The supervisor builds it from the flags of
// `redline target proc unit`.
type Config struct {
	// Unit and Replica name this replica ("b", "r1").
	Unit, Replica string
	// DataDir holds the replica's database (DATA/units/<unit>/<replica>).
	DataDir string
	// DSN and Schema put the replica's database on PostgreSQL (a schema of its own; DataDir
	// still holds its scratch files); empty DSN: a SQLite file in DataDir.
	DSN, Schema string
	// Listener serves the HTTP API when set; otherwise Listen ("127.0.0.1:0") is bound.
	Listener net.Listener
	Listen   string
	// Role at start: primary, standby or catching_up.
	Role string
	// Epoch of the unit's configuration at start. A replica whose database holds a newer epoch
	// refuses to start as primary.
	Epoch int64
	// StandbyAddr is the standby a primary replicates to ("" when it runs alone).
	StandbyAddr string
	// PrimaryAddr is where a catching_up replica fetches the snapshot; when empty it asks the
	// core zone for the unit's primary.
	PrimaryAddr string
	// CoreAddrs are the core zone replicas' HTTP addresses (drop-standby, add-standby, routing).
	CoreAddrs []string
	// Defects are the seeded defects switched on.
	Defects []Defect
	// Logger receives the unit's log; nil discards it.
	Logger *slog.Logger
	// BatchMax bounds the business writes of one group commit: 0 is the default (4,096), 1
	// turns group commit off (for the benchmark that shows what it buys).
	BatchMax int
	// NATS is the broker's URL; the primary's relay publishes the outbox there. Empty: no relay
	// (the outbox still fills).
	NATS string

	// plane is shadow.Shadow for the shadow plane's server (plane.go), empty for production.
	plane shadow.Plane
}

// Place is where the replica's database lives.
func (c Config) Place() sqldb.Place {
	return sqldb.Place{Dir: c.DataDir, File: storage.FileName, DSN: c.DSN, Schema: c.Schema}
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Unit == "" || c.Replica == "" {
		errs = append(errs, errors.New("unit and replica names are required"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir is required"))
	}
	if c.Listener == nil && c.Listen == "" {
		errs = append(errs, errors.New("a listen address or a listener is required"))
	}
	if c.DSN != "" {
		if err := c.Place().Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	switch c.Role {
	case ledger.RolePrimary, ledger.RoleStandby, ledger.RoleCatchingUp:
	default:
		errs = append(errs, fmt.Errorf("role %q: want primary, standby or catching_up", c.Role))
	}
	if c.BatchMax < 0 || c.BatchMax > batchWeightMax {
		errs = append(errs, fmt.Errorf("batch max %d: want 0..%d", c.BatchMax, batchWeightMax))
	}
	if c.Epoch < 0 {
		errs = append(errs, fmt.Errorf("epoch %d is negative", c.Epoch))
	}
	for _, d := range c.Defects {
		if !slices.Contains(Defects(), d) {
			errs = append(errs, fmt.Errorf("unknown defect %q", d))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

func (c Config) has(d Defect) bool { return slices.Contains(c.Defects, d) }

// Run serves one unit replica until ctx is cancelled, then stops at once (like a kill: batches
// not yet replicated stay unacknowledged) and closes the database. It returns nil after a
// cancellation and an error when the replica cannot start or fails.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	s, err := newServer(ctx, cfg)
	if err != nil {
		return err
	}
	if err := s.attachShadow(ctx); err != nil {
		s.db.Close()
		return err
	}
	return s.run(ctx)
}
