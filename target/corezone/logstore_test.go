package corezone

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// TestLogStoreMigratesBolt: a data dir of an earlier version (raft-boltdb's raft.db) opens as a
// WAL holding the same entries, term and vote, and the bolt file is gone; a migration cut short
// (a leftover temporary WAL) is done again from the start.
func TestLogStoreMigratesBolt(t *testing.T) {
	dir := t.TempDir()
	bolt, err := raftboltdb.NewBoltStore(filepath.Join(dir, boltLogName))
	if err != nil {
		t.Fatal(err)
	}
	var logs []*raft.Log
	for i := uint64(5); i <= 300; i++ { // a compacted log starts after 1
		logs = append(logs, &raft.Log{Index: i, Term: 2 + i/100, Type: raft.LogCommand, Data: fmt.Appendf(nil, "entry %d", i)})
	}
	if err := bolt.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if err := bolt.SetUint64([]byte("CurrentTerm"), 4); err != nil {
		t.Fatal(err)
	}
	if err := bolt.Set([]byte("LastVoteCand"), []byte("2")); err != nil {
		t.Fatal(err)
	}
	bolt.Close()
	// A migration that died half way left this behind.
	if err := os.MkdirAll(filepath.Join(dir, walTemp, "junk"), 0o755); err != nil {
		t.Fatal(err)
	}
	if !HasState(dir) {
		t.Fatal("HasState = false with a bolt log")
	}

	store, err := openLogStore(dir, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	first, _ := store.FirstIndex()
	last, _ := store.LastIndex()
	if first != 5 || last != 300 {
		t.Fatalf("migrated log holds [%d, %d], want [5, 300]", first, last)
	}
	for _, want := range logs {
		var got raft.Log
		if err := store.GetLog(want.Index, &got); err != nil {
			t.Fatalf("entry %d: %v", want.Index, err)
		}
		if got.Term != want.Term || string(got.Data) != string(want.Data) {
			t.Fatalf("entry %d = term %d %q, want term %d %q", want.Index, got.Term, got.Data, want.Term, want.Data)
		}
	}
	if term, err := store.GetUint64([]byte("CurrentTerm")); err != nil || term != 4 {
		t.Fatalf("CurrentTerm = %d, %v; want 4", term, err)
	}
	if cand, err := store.Get([]byte("LastVoteCand")); err != nil || string(cand) != "2" {
		t.Fatalf("LastVoteCand = %q, %v; want 2", cand, err)
	}
	for _, gone := range []string{boltLogName, walTemp} {
		if _, err := os.Stat(filepath.Join(dir, gone)); !os.IsNotExist(err) {
			t.Fatalf("%s still there after the migration (%v)", gone, err)
		}
	}
	if !HasState(dir) {
		t.Fatal("HasState = false with a WAL")
	}
	if HasState(t.TempDir()) {
		t.Fatal("HasState = true in an empty dir")
	}
}

// TestLogStoreBadBolt: a bolt file that is not a bolt database is an error that names it, and
// the file stays as it was.
func TestLogStoreBadBolt(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, boltLogName)
	if err := os.WriteFile(path, []byte("not a bolt file, not at all, and long enough to read"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := openLogStore(dir, hclog.NewNullLogger()); err == nil {
		t.Fatal("opened a damaged bolt log")
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "not a bolt file, not at all, and long enough to read" {
		t.Fatalf("damaged bolt log changed: %q, %v", b, err)
	}
	for _, gone := range []string{walDirName, walTemp} {
		if _, err := os.Stat(filepath.Join(dir, gone)); !os.IsNotExist(err) {
			t.Fatalf("%s created for a damaged bolt log (%v)", gone, err)
		}
	}
}
