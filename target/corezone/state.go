// Package corezone is the core zone of the built-in payment target: a 3-replica Raft group
// (hashicorp/raft, raft-wal log) whose replicated state is the routing table (bucket → unit)
// and every unit's configuration (primary, standby, epoch). Its leader watches each unit's
// primary and fails over to the standby with a new epoch when the primary stops answering.
//
// The state machine is plain data and pure functions (State.apply); the Raft plumbing, the HTTP
// API and the failure detector sit around it. The wire format is target/PROTOCOL.md, with these
// additions:
//
//   - a unit's state also has standby_synced (only a synced standby is promoted: see watch) and
//     failovers (a count);
//   - GET /v1/status answers one replica's own view (Raft state, leader, term, epoch);
//   - a primary that never answered a new leader's watcher is failed over only after
//     watchGrace (2 s), so a unit process still starting is not taken for a dead one.
package corezone

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/redline-dev/redline/target/ledger"
)

// BucketCount is the number of buckets: an account's bucket is uid % BucketCount.
const BucketCount = 100

// Limits of the configuration the core zone accepts.
const (
	unitsMax       = ledger.UnitsMax // units are named a..z; the money bound counts on it
	replicasMax    = 2               // r1 and r2: a primary and a standby
	replicaNameMax = 16
	addrMax        = 64
)

// Errors of the state machine. The HTTP API maps each to a status and a code.
var (
	ErrStaleEpoch     = errors.New("stale epoch")
	ErrUnknownUnit    = errors.New("unknown unit")
	ErrStandbyNotOK   = errors.New("standby not promotable")
	ErrStandbyPresent = errors.New("unit already has a standby")
	ErrBadReplica     = errors.New("bad replica")
	ErrNotInitialized = errors.New("routing not initialized")
	ErrInitialized    = errors.New("routing already initialized")
	ErrBadCommand     = errors.New("bad command")
	ErrNotLeader      = errors.New("not the leader")
)

// State is the replicated state: the routing table and the unit configurations.
type State struct {
	// Epoch increments on every configuration change of any unit.
	Epoch uint64 `json:"epoch"`
	// Units by name (a, b, ...).
	Units map[string]Unit `json:"units"`
	// Buckets maps a bucket (uid % 100) to the name of its unit; empty before initialization.
	Buckets []string `json:"buckets"`
}

// Unit is one unit's configuration.
type Unit struct {
	// Epoch is the global epoch of the unit's last configuration change; writes carry it.
	Epoch   uint64 `json:"epoch"`
	Primary string `json:"primary"`
	// Standby is empty when the unit runs alone.
	Standby string `json:"standby"`
	// StandbyOK says the standby is in the configuration: the primary acknowledges a change
	// only after the standby has it.
	StandbyOK bool `json:"standby_ok"`
	// StandbySynced says the leader saw the standby holding everything the primary had when it
	// took this configuration, so also what the primary acknowledged alone before add-standby.
	// Only a synced standby is promoted.
	StandbySynced bool `json:"standby_synced"`
	// Addrs maps replica names (r1, r2) to their HTTP addresses.
	Addrs map[string]string `json:"addrs"`
	// LastFailoverMS is the duration of the last automatic failover, from the last answer of
	// the dead primary to the new primary configured (an upper bound of kill → configured).
	LastFailoverMS int64 `json:"last_failover_ms"`
	// Failovers counts automatic and requested promotions.
	Failovers int `json:"failovers"`
}

// PrimaryAddr is the HTTP address of the unit's primary.
func (u Unit) PrimaryAddr() string { return u.Addrs[u.Primary] }

// StandbyAddr is the HTTP address of the unit's standby, empty when it has none.
func (u Unit) StandbyAddr() string {
	if u.Standby == "" {
		return ""
	}
	return u.Addrs[u.Standby]
}

// Initialized says whether the routing table was set up.
func (s State) Initialized() bool { return len(s.Buckets) == BucketCount }

// UnitOf is the name of the unit that owns uid.
func (s State) UnitOf(uid int64) (string, bool) {
	if !s.Initialized() || uid < 0 {
		return "", false
	}
	return s.Buckets[uid%BucketCount], true
}

// Clone returns a deep copy: states are values, shared between goroutines only as copies.
func (s State) Clone() State {
	c := State{Epoch: s.Epoch, Buckets: slices.Clone(s.Buckets), Units: make(map[string]Unit, len(s.Units))}
	for name, u := range s.Units {
		u.Addrs = maps.Clone(u.Addrs)
		c.Units[name] = u
	}
	return c
}

// Op names a command of the state machine.
type Op string

// The commands. Every configuration change (promote, drop-standby, add-standby) bumps the epoch.
const (
	OpInit         Op = "init"
	OpPromote      Op = "promote"
	OpDropStandby  Op = "drop-standby"
	OpAddStandby   Op = "add-standby"
	OpFailoverTime Op = "failover-time"  // records a measured failover; no configuration change
	OpSynced       Op = "standby-synced" // records the standby in sync; no configuration change

	// The commands of cross-unit transfers (transfers.go): none changes a configuration.
	OpTransferBegin  Op = "transfer-begin"  // a transfer to try (Transfer)
	OpTransferDecide Op = "transfer-decide" // its decision (Key, Decision, Reason; Transfer: presumed abort)
	OpTransferDone   Op = "transfer-done"   // both participants applied the decisions (Keys)
)

// Command is one entry of the Raft log.
type Command struct {
	Op   Op     `json:"op"`
	Unit string `json:"unit,omitempty"`
	// Epoch is the unit epoch the caller saw; a command with another epoch is stale.
	Epoch   uint64 `json:"epoch,omitempty"`
	Replica string `json:"replica,omitempty"`
	Addr    string `json:"addr,omitempty"`
	// Seeds is the initial layout (OpInit only).
	Seeds []UnitSeed `json:"seeds,omitempty"`
	// FailoverMS is a measured failover duration (OpFailoverTime only).
	FailoverMS int64 `json:"failover_ms,omitempty"`
	// Transfer, Key, Decision, Reason and Keys are the operands of the transfer commands.
	Transfer *Transfer `json:"transfer,omitempty"`
	Key      string    `json:"key,omitempty"`
	Decision string    `json:"decision,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Keys     []string  `json:"keys,omitempty"`
}

// UnitSeed is a unit of the initial layout: its replicas in order, the first one the primary.
type UnitSeed struct {
	Name     string        `json:"name"`
	Replicas []ReplicaSeed `json:"replicas"`
}

// ReplicaSeed is a replica of the initial layout.
type ReplicaSeed struct {
	Name string `json:"name"`
	Addr string `json:"addr"`
}

// apply returns the state after c, and the affected unit. It never changes s (states are values
// shared by readers) and it is deterministic, as every replica applies the same log.
func (s State) apply(c Command) (State, Unit, error) {
	if c.Op == OpInit {
		return s.init(c.Seeds)
	}
	if !s.Initialized() {
		return s, Unit{}, ErrNotInitialized
	}
	u, ok := s.Units[c.Unit]
	if !ok {
		return s, Unit{}, fmt.Errorf("%w %q", ErrUnknownUnit, c.Unit)
	}
	if c.Op == OpFailoverTime {
		if c.FailoverMS < 0 {
			return s, u, fmt.Errorf("%w: negative failover time", ErrBadCommand)
		}
		n := s.Clone()
		u.LastFailoverMS = c.FailoverMS
		u.Addrs = maps.Clone(u.Addrs)
		n.Units[c.Unit] = u
		return n, u, nil
	}
	if c.Epoch != u.Epoch {
		return s, u, fmt.Errorf("%w: unit %s is at epoch %d, not %d", ErrStaleEpoch, c.Unit, u.Epoch, c.Epoch)
	}
	u.Addrs = maps.Clone(u.Addrs)
	if c.Op == OpSynced {
		if u.Standby == "" || !u.StandbyOK {
			return s, u, fmt.Errorf("%w: unit %s has no standby", ErrStandbyNotOK, c.Unit)
		}
		n := s.Clone()
		u.StandbySynced = true
		n.Units[c.Unit] = u
		return n, u, nil
	}
	switch c.Op {
	case OpPromote:
		if u.Standby == "" || !u.StandbyOK || !u.StandbySynced {
			return s, u, fmt.Errorf("%w: unit %s", ErrStandbyNotOK, c.Unit)
		}
		u.Primary, u.Standby, u.StandbyOK, u.StandbySynced = u.Standby, "", false, false
		u.Failovers++
	case OpDropStandby:
		u.Standby, u.StandbyOK, u.StandbySynced = "", false, false
	case OpAddStandby:
		if err := checkReplica(c.Replica, c.Addr); err != nil {
			return s, u, err
		}
		if c.Replica == u.Primary {
			return s, u, fmt.Errorf("%w: %s is the primary of unit %s", ErrBadReplica, c.Replica, c.Unit)
		}
		if u.Standby != "" && u.Standby != c.Replica && u.StandbyOK {
			return s, u, fmt.Errorf("%w: unit %s has %s", ErrStandbyPresent, c.Unit, u.Standby)
		}
		if _, known := u.Addrs[c.Replica]; !known && len(u.Addrs) >= replicasMax {
			return s, u, fmt.Errorf("%w: unit %s has %d replicas already", ErrBadReplica, c.Unit, replicasMax)
		}
		u.Standby, u.StandbyOK, u.StandbySynced = c.Replica, true, false
		u.Addrs[c.Replica] = c.Addr
	default:
		return s, u, fmt.Errorf("%w: op %q", ErrBadCommand, c.Op)
	}
	n := s.Clone()
	n.Epoch++
	u.Epoch = n.Epoch
	n.Units[c.Unit] = u
	return n, u, nil
}

// init sets up the routing table: buckets spread over the units round-robin (bucket % units),
// the first replica of each unit its primary, the second its standby, all at epoch 1.
func (s State) init(seeds []UnitSeed) (State, Unit, error) {
	if s.Initialized() {
		return s, Unit{}, ErrInitialized
	}
	if err := CheckSeeds(seeds); err != nil {
		return s, Unit{}, err
	}
	n := State{Epoch: 1, Units: make(map[string]Unit, len(seeds)), Buckets: make([]string, BucketCount)}
	for _, seed := range seeds {
		u := Unit{Epoch: 1, Primary: seed.Replicas[0].Name, Addrs: make(map[string]string, len(seed.Replicas))}
		for _, r := range seed.Replicas {
			u.Addrs[r.Name] = r.Addr
		}
		if len(seed.Replicas) > 1 {
			// Both replicas start empty: the standby is in sync from the start.
			u.Standby, u.StandbyOK, u.StandbySynced = seed.Replicas[1].Name, true, true
		}
		n.Units[seed.Name] = u
	}
	for b := range n.Buckets {
		n.Buckets[b] = seeds[b%len(seeds)].Name
	}
	return n, Unit{}, nil
}

// CheckSeeds reports what is wrong with an initial layout.
func CheckSeeds(seeds []UnitSeed) error {
	if len(seeds) == 0 || len(seeds) > unitsMax {
		return fmt.Errorf("%w: %d units, want 1..%d", ErrBadCommand, len(seeds), unitsMax)
	}
	names := make(map[string]bool, len(seeds))
	for _, seed := range seeds {
		if seed.Name == "" || len(seed.Name) > replicaNameMax || names[seed.Name] {
			return fmt.Errorf("%w: unit name %q empty, too long or repeated", ErrBadCommand, seed.Name)
		}
		names[seed.Name] = true
		if len(seed.Replicas) == 0 || len(seed.Replicas) > replicasMax {
			return fmt.Errorf("%w: unit %s has %d replicas, want 1..%d", ErrBadCommand, seed.Name, len(seed.Replicas), replicasMax)
		}
		for i, r := range seed.Replicas {
			if err := checkReplica(r.Name, r.Addr); err != nil {
				return err
			}
			if i == 1 && r.Name == seed.Replicas[0].Name {
				return fmt.Errorf("%w: unit %s names %s twice", ErrBadReplica, seed.Name, r.Name)
			}
		}
	}
	return nil
}

func checkReplica(name, addr string) error {
	if name == "" || len(name) > replicaNameMax {
		return fmt.Errorf("%w: name %q", ErrBadReplica, name)
	}
	if addr == "" || len(addr) > addrMax {
		return fmt.Errorf("%w: address %q of %s", ErrBadReplica, addr, name)
	}
	return nil
}
