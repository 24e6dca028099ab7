package supervisor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// TopologyVersion is the format version of topology.json.
const TopologyVersion = 1

// Process roles.
const (
	RoleCore   = "core"
	RoleUnit   = "unit"
	RoleRouter = "router"
	// RoleBroker is the embedded NATS JetStream server (absent with an external --nats).
	RoleBroker = "broker"
	// RoleConsumer is one consumer group; its Unit field names the group.
	RoleConsumer = "consumer"
)

// Topology is DATA/topology.json: every process of the target, kept current.
type Topology struct {
	Version int `json:"version"`
	// Generation increments on every rewrite of the file.
	Generation int64    `json:"generation"`
	Router     string   `json:"router"`
	Admin      string   `json:"admin"`
	Core       []string `json:"core"` // the core replicas' HTTP addresses
	// Postgres is the server of the databases, absent when they are SQLite files.
	Postgres  *Postgres `json:"postgres,omitempty"`
	Processes []Process `json:"processes"`
}

// Process is one process of the topology.
type Process struct {
	Role string `json:"role"`
	// Unit is the unit of a unit replica ("a"), "-" for other roles.
	Unit string `json:"unit"`
	// Replica is the replica of a unit ("r1") or the core replica's id ("1"), "-" for the router.
	Replica string `json:"replica"`
	// Mode is primary, standby, catching_up or out for a unit replica; leader or follower for a
	// core replica; empty when unknown.
	Mode     string `json:"mode,omitempty"`
	Pid      int    `json:"pid"`
	Addr     string `json:"addr"`
	RaftAddr string `json:"raft_addr,omitempty"`
	Up       bool   `json:"up"`
	Paused   bool   `json:"paused,omitempty"`
	Restarts int    `json:"restarts"`
	Log      string `json:"log"`
	// Schema is a unit replica's or consumer group's schema on the PostgreSQL server.
	Schema string `json:"schema,omitempty"`
}

// Key names a process in the admin API: role/unit/replica.
func (p Process) Key() string { return p.Role + "/" + p.Unit + "/" + p.Replica }

// Find returns the process named role/unit/replica.
func (t Topology) Find(role, unit, replica string) (Process, bool) {
	for _, p := range t.Processes {
		if p.Role == role && p.Unit == unit && p.Replica == replica {
			return p, true
		}
	}
	return Process{}, false
}

// ReadTopology reads DATA/topology.json.
func ReadTopology(dataDir string) (Topology, error) {
	var t Topology
	b, err := os.ReadFile(filepath.Join(dataDir, topologyFile))
	if err != nil {
		return t, fmt.Errorf("read topology: %w", err)
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return t, fmt.Errorf("decode topology: %w", err)
	}
	if t.Version != TopologyVersion {
		return t, fmt.Errorf("decode topology: version %d, want %d", t.Version, TopologyVersion)
	}
	return t, nil
}

// ReadToken reads DATA/admin.token.
func ReadToken(dataDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, tokenFile))
	if err != nil {
		return "", fmt.Errorf("read admin token: %w", err)
	}
	return string(bytes.TrimSpace(b)), nil
}

const (
	topologyFile = "topology.json"
	tokenFile    = "admin.token"
)

// writeFileAtomic replaces path with data: readers see the old file or the new one, never a part.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after the rename, a no-op
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
