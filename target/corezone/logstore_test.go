package corezone

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// TestLogStoreReopensAfterSuffixTruncation: a follower whose log outran a new leader's clears the
// suffix (raft's "clearing log suffix"); killed and started again, it must read its log. raft-wal
// v0.4.0 marked the truncated tail segment sealed without writing its index, and the restarted
// replica panicked in raft.NewRaft with "sealed segment has no index block" (raft-wal issue 31;
// seen when the CI's kill test killed the same core replica as leader, then as follower).
func TestLogStoreReopensAfterSuffixTruncation(t *testing.T) {
	dir := t.TempDir()
	logger := hclog.NewNullLogger()
	s, err := openLogStore(dir, logger)
	if err != nil {
		t.Fatal(err)
	}
	store := func(from, to, term uint64) {
		t.Helper()
		var logs []*raft.Log
		for i := from; i <= to; i++ {
			logs = append(logs, &raft.Log{Index: i, Term: term, Type: raft.LogCommand, Data: fmt.Appendf(nil, "entry %d term %d", i, term)})
		}
		if err := s.StoreLogs(logs); err != nil {
			t.Fatal(err)
		}
	}
	store(1, 20, 1)
	if err := s.DeleteRange(15, 20); err != nil { // the suffix a new leader does not hold
		t.Fatal(err)
	}
	store(15, 30, 2) // the new leader's entries
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = openLogStore(dir, logger)
	if err != nil {
		t.Fatalf("reopen after a suffix truncation: %v", err)
	}
	defer s.Close()
	for i, term := range map[uint64]uint64{1: 1, 14: 1, 15: 2, 30: 2} {
		var l raft.Log
		if err := s.GetLog(i, &l); err != nil || l.Term != term {
			t.Errorf("entry %d after reopening: term %d, %v; want term %d", i, l.Term, err, term)
		}
	}
	if last, err := s.LastIndex(); err != nil || last != 30 {
		t.Errorf("last index %d %v, want 30", last, err)
	}
}

// TestLogStoreRefusesAnUnreadableLog: a log with an entry that cannot be read is refused at open
// with the entry named, where hashicorp/raft would panic on it at start.
func TestLogStoreRefusesAnUnreadableLog(t *testing.T) {
	dir := t.TempDir()
	s, err := openLogStore(dir, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	entry := make([]byte, 1<<20)
	for i := uint64(1); i <= 10; i++ { // over a segment: the first is sealed
		if err := s.StoreLogs([]*raft.Log{{Index: i, Term: 1, Type: raft.LogCommand, Data: entry}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	segments, err := filepath.Glob(filepath.Join(dir, walDirName, "*.wal"))
	if err != nil || len(segments) < 2 {
		t.Fatalf("segments %v %v, want a sealed one and a tail", segments, err)
	}
	if err := os.Truncate(segments[0], 4<<20); err != nil { // the sealed segment loses its end
		t.Fatal(err)
	}
	_, err = openLogStore(dir, hclog.NewNullLogger())
	if err == nil || !strings.Contains(err.Error(), "cannot be read") || !strings.Contains(err.Error(), "entry ") {
		t.Errorf("open a damaged log: %v, want the unreadable entry named", err)
	}
}
