package corezone

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/migrate"
)

// A replica keeps its Raft log and its term and vote in a write-ahead log (hashicorp/raft-wal)
// in DataDir/wal: an append is one write and one fdatasync of a preallocated segment, where
// raft-boltdb's B+tree commit is two of each (pages, then meta). Measured on this project's
// machines: a quarter of the CPU and a third of the latency per append; on a follower, the
// log append was half of its CPU under cross-unit load.
//
// Data dirs of earlier versions hold the log in DataDir/raft.db (raft-boltdb); the first start
// copies it into the WAL (walTemp, renamed to walDirName once complete) and removes it.
const (
	walDirName     = "wal"
	walTemp        = "wal.migrating"
	boltLogName    = "raft.db"
	walSegmentSize = 8 << 20 // bytes; the library's default is 64 MiB, preallocated per replica
	migrateBatch   = 1 << 20 // bytes of log entries per append while migrating
)

// HasState says whether a core replica has kept Raft state in dir (its DataDir).
func HasState(dir string) bool {
	for _, name := range []string{walDirName, boltLogName} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return true
		}
	}
	return false
}

// openLogStore opens the replica's WAL in dir, migrating a raft-boltdb log first if one is there.
func openLogStore(dir string, logger hclog.Logger) (logStore, error) {
	walDir := filepath.Join(dir, walDirName)
	if _, err := os.Stat(walDir); errors.Is(err, fs.ErrNotExist) {
		if err := migrateBoltLog(dir, logger); err != nil {
			return logStore{}, err
		}
		if err := os.MkdirAll(walDir, 0o755); err != nil {
			return logStore{}, fmt.Errorf("create raft log dir: %w", err)
		}
	}
	w, err := openWAL(walDir, logger)
	if err != nil {
		return logStore{}, fmt.Errorf("open raft log %s: %w", walDir, err)
	}
	if err := checkReadable(w); err != nil {
		w.Close()
		return logStore{}, fmt.Errorf("raft log %s cannot be read, so this replica cannot start from it: %w", walDir, err)
	}
	return w, nil
}

// checkReadable reads every entry of the log. hashicorp/raft reads those after its snapshot at
// start, for the latest configuration, and panics on one it cannot read: the supervisor would
// restart a crash forever. A log damaged before raft-wal v0.4.1 (a suffix truncation left its
// segment sealed without an index, raft-wal issue 31) is then this error in the replica's log.
// It costs a start 85–120 ms for a log of 20,000 entries (raft's defaults keep ~18,000 at most:
// 8,192 before a snapshot plus 10,240 trailing), once, at start; raft does not read the entries
// before its snapshot there, but a damaged segment can hold both, so all are read.
func checkReadable(s logStore) error {
	first, err := s.FirstIndex()
	if err != nil {
		return err
	}
	last, err := s.LastIndex()
	if err != nil {
		return err
	}
	var l raft.Log
	for i := first; i > 0 && i <= last; i++ {
		if err := s.GetLog(i, &l); err != nil {
			return fmt.Errorf("entry %d of %d to %d: %w", i, first, last, err)
		}
	}
	return nil
}

// logStore is a replica's WAL with its metadata database, which WAL.Close leaves open (and
// locked: a second open in the same process would wait for the lock forever).
type logStore struct {
	*wal.WAL
	meta *metadb.BoltMetaDB
}

func openWAL(dir string, logger hclog.Logger) (logStore, error) {
	meta := &metadb.BoltMetaDB{}
	w, err := wal.Open(dir, wal.WithSegmentSize(walSegmentSize), wal.WithLogger(logger), wal.WithMetaStore(meta))
	if err != nil {
		meta.Close()
		return logStore{}, err
	}
	return logStore{WAL: w, meta: meta}, nil
}

// Close closes the WAL, then its metadata.
func (s logStore) Close() error {
	return errors.Join(s.WAL.Close(), s.meta.Close())
}

// migrateBoltLog copies dir's raft-boltdb log and stable keys, if there is one, into a WAL at
// dir/walTemp, renames that to dir/walDirName and removes the bolt file. A migration cut short
// leaves the bolt file whole and is done again from the start.
func migrateBoltLog(dir string, logger hclog.Logger) error {
	boltPath := filepath.Join(dir, boltLogName)
	if _, err := os.Stat(boltPath); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	tmp := filepath.Join(dir, walTemp)
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("remove unfinished raft log migration: %w", err)
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return fmt.Errorf("migrate raft log: %w", err)
	}
	if err := copyBoltLog(boltPath, tmp, logger); err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("migrate raft log %s: %w", boltPath, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, walDirName)); err != nil {
		return fmt.Errorf("migrate raft log: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("migrate raft log: %w", err)
	}
	if err := os.Remove(boltPath); err != nil {
		return fmt.Errorf("remove migrated raft log: %w", err)
	}
	logger.Info("migrated raft log from raft-boltdb", "from", boltPath)
	return nil
}

func copyBoltLog(boltPath, walDir string, logger hclog.Logger) error {
	src, err := raftboltdb.NewBoltStore(boltPath)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := openWAL(walDir, logger)
	if err != nil {
		return err
	}
	defer dst.Close()
	last, err := src.LastIndex()
	if err != nil {
		return err
	}
	ctx := context.Background()
	if last > 0 {
		if err := migrate.CopyLogs(ctx, dst, src, migrateBatch, nil); err != nil {
			return err
		}
	}
	// The keys hashicorp/raft keeps (a replica that never voted has no vote keys).
	for _, k := range []string{"CurrentTerm", "LastVoteTerm"} {
		v, err := src.GetUint64([]byte(k))
		if errors.Is(err, raftboltdb.ErrKeyNotFound) {
			continue
		}
		if err == nil {
			err = dst.SetUint64([]byte(k), v)
		}
		if err != nil {
			return fmt.Errorf("copy %s: %w", k, err)
		}
	}
	v, err := src.Get([]byte("LastVoteCand"))
	if errors.Is(err, raftboltdb.ErrKeyNotFound) {
		return nil
	}
	if err == nil {
		err = dst.Set([]byte("LastVoteCand"), v)
	}
	if err != nil {
		return fmt.Errorf("copy LastVoteCand: %w", err)
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
