package unit_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redline-dev/redline/target/ledger"
	"github.com/redline-dev/redline/target/sqldb"
	"github.com/redline-dev/redline/target/sqldb/sqldbtest"
	"github.com/redline-dev/redline/target/storage"
	"github.com/redline-dev/redline/target/unit/unittest"
)

// TestCatchUpBase pins what a restarted replica catches up from: its own history when that is
// a prefix of the primary's and the primary still keeps the entries after it (only those are
// pulled); its history rewound to where it parts from the primary's, when a killed primary's
// tail was never replicated (the tail must not survive; only the primary's entries after the
// parting are pulled); a full snapshot otherwise: entries the primary no longer keeps cannot
// be pulled. Each case ends with the pair converged, every acknowledged payment read back on
// both replicas and every invariant true. On SQLite and on PostgreSQL.
func TestCatchUpBase(t *testing.T) {
	tests := []struct {
		name string
		// prepare brings the pair to the moment the returning replica restarts.
		prepare func(t *testing.T, p *unittest.Pair, w *unittest.Witness) returning
		base    string
	}{
		{"standby behind", standbyBehind, "own_history"},
		{"primary's tail overwritten", func(t *testing.T, p *unittest.Pair, w *unittest.Witness) returning {
			return primaryTail(t, p, w, 10)
		}, "rewound"},
		{"primary's tail beyond the new head", func(t *testing.T, p *unittest.Pair, w *unittest.Witness) returning {
			return primaryTail(t, p, w, 0)
		}, "rewound"},
		{"entries trimmed at the primary", entriesTrimmed, "snapshot"},
	}
	for _, be := range sqldbtest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) { catchUpBase(t, be.Server(t), tt.prepare, tt.base) })
			}
		})
	}
}

// returning is the replica that restarts, its head when it stopped, the last seq of its
// history the primary holds as well, and the keys it must not hold after the catch-up.
type returning struct {
	r      *unittest.Replica
	held   int64
	shared int64
	gone   []ledger.Payment
}

func catchUpBase(t *testing.T, srv sqldb.Server, prepare func(*testing.T, *unittest.Pair, *unittest.Witness) returning, base string) {
	p := unittest.StartPair(t, unittest.Options{Storage: srv})
	seed(t, p, 8, 1_000)
	w := unittest.NewWitness()
	if un := payMany(t, p, p.Primary().Addr(), p.Epoch(), "before", 10, w, 5*time.Second); len(un) > 0 {
		t.Fatalf("%d payments unacknowledged with a healthy standby", len(un))
	}
	ret := prepare(t, p, w)
	back := ret.r
	primary := p.Primary()
	ps, err := p.State(primary)
	if err != nil {
		t.Fatal(err)
	}
	back.Start(ledger.RoleCatchingUp, p.Epoch(), "", primary.Addr())
	p.WaitSynced(t, back)
	got, all := map[string]float64{}, 0.0
	for _, b := range []string{"own_history", "rewound", "snapshot"} {
		got[b] = metric(t, p, back, `paycell_catchups_total{base="`+b+`"}`)
		all += got[b]
	}
	if got[base] != 1 || all != 1 {
		t.Fatalf("catch-ups by base %v, want one from %s", got, base)
	}
	// The primary stood still: the replica pulled exactly what the primary holds after their
	// shared history, or nothing after a snapshot; it undid exactly its own tail.
	wantPulled, wantRewound := ps.LastSeq-ret.shared, int64(0)
	switch base {
	case "rewound":
		wantRewound = ret.held - ret.shared
	case "snapshot":
		wantPulled = 0
	}
	if pulled := metric(t, p, back, "paycell_catchup_pulled_entries_total"); pulled != float64(wantPulled) {
		t.Errorf("pulled %v entries, want %v", pulled, wantPulled)
	}
	if rewound := metric(t, p, back, "paycell_catchup_rewound_entries_total"); rewound != float64(wantRewound) || (base == "rewound") != (rewound > 0) {
		t.Errorf("rewound %v entries, want %v", rewound, wantRewound)
	}
	// A snapshot's bytes, counted as they arrived and as they were installed: all of them.
	downloaded := metric(t, p, back, "paycell_catchup_snapshot_downloaded_bytes_total")
	installed := metric(t, p, back, "paycell_catchup_snapshot_installed_bytes_total")
	if (base == "snapshot") != (downloaded > 0) || installed != downloaded {
		t.Errorf("snapshot bytes downloaded %v, installed %v, after a catch-up from %s", downloaded, installed, base)
	}
	for _, pay := range ret.gone {
		if status, _, err := p.Client.Payment(context.Background(), back.Addr(), pay.Key); err != nil || status != http.StatusNotFound {
			t.Errorf("unreplicated %s after the catch-up: %d %v, want 404", pay.Key, status, err)
		}
	}
	if un := payMany(t, p, primary.Addr(), p.Epoch(), "after", 10, w, 5*time.Second); len(un) > 0 {
		t.Fatalf("%d payments unacknowledged after the catch-up", len(un))
	}
	p.WaitSynced(t, back)
	for _, r := range []*unittest.Replica{primary, back} {
		if bad := w.Check(context.Background(), p.Client, r.Addr()); len(bad) > 0 {
			t.Fatalf("read-back at %s: %v", r.Name, bad)
		}
	}
	expectAllTrue(t, p)
}

// killStandby kills the standby and has the primary go on alone for n payments.
func killStandby(t *testing.T, p *unittest.Pair, w *unittest.Witness, n int) returning {
	t.Helper()
	primary := p.Primary()
	standby := p.Other(primary)
	st, err := p.State(standby)
	if err != nil {
		t.Fatal(err)
	}
	standby.Kill()
	if un := payMany(t, p, primary.Addr(), 0, "alone", n, w, 8*time.Second); len(un) > 0 {
		t.Fatalf("%d payments unacknowledged after the standby died", len(un))
	}
	return returning{r: standby, held: st.LastSeq, shared: st.LastSeq}
}

// standbyBehind: a killed standby comes back; its history is a prefix of the primary's.
func standbyBehind(t *testing.T, p *unittest.Pair, w *unittest.Witness) returning {
	return killStandby(t, p, w, 30)
}

// primaryTail: the primary commits payments its standby never gets (unacknowledged), is
// killed and failed over; the new primary then takes newWrites payments (0: its head stays
// below the old primary's). The old primary's tail must go.
func primaryTail(t *testing.T, p *unittest.Pair, w *unittest.Witness, newWrites int) returning {
	t.Helper()
	old := p.Primary()
	p.Link.Pause()
	tail := payMany(t, p, old.Addr(), p.Epoch(), "tail", 5, w, 300*time.Millisecond)
	if len(tail) != 5 {
		t.Fatalf("%d of 5 payments unacknowledged with the standby unreachable, want 5", len(tail))
	}
	st, err := p.State(old)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := p.State(p.Other(old))
	if err != nil {
		t.Fatal(err)
	}
	old.Kill()
	primary := p.Failover(t)
	p.Link.Resume()
	if ps, err := p.State(primary); err != nil || ps.LastSeq >= st.LastSeq {
		t.Fatalf("new primary at %+v (%v), want below the old primary's %d: the tail was replicated", ps, err, st.LastSeq)
	}
	if un := payMany(t, p, primary.Addr(), p.Epoch(), "new", newWrites, w, 5*time.Second); len(un) > 0 {
		t.Fatalf("%d payments unacknowledged at the new primary", len(un))
	}
	return returning{r: old, held: st.LastSeq, shared: sb.LastSeq, gone: tail}
}

// entriesTrimmed: the standby comes back behind a primary that dropped the bodies of the
// entries right after the standby's head (as its window of kept bodies does in a long run).
func entriesTrimmed(t *testing.T, p *unittest.Pair, w *unittest.Witness) returning {
	t.Helper()
	ret := killStandby(t, p, w, 30)
	ctx := context.Background()
	db, err := storage.OpenAt(ctx, p.Primary().Place())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	from := ret.held + 1
	if err := tx.TrimEntries(ctx, from, from+1); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Entries(ctx, from, 1); err == nil {
		t.Fatalf("entry %d still readable after the trim", from)
	}
	return ret
}

// metric reads one series of r's /metrics (0 when absent).
func metric(t *testing.T, p *unittest.Pair, r *unittest.Replica, series string) float64 {
	t.Helper()
	status, raw, err := p.Client.Do(context.Background(), http.MethodGet, "http://"+r.Addr()+"/metrics", nil, nil, 0)
	if err != nil || status != http.StatusOK {
		t.Fatalf("metrics of %s: %d %v", r.Name, status, err)
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", l, err)
			}
			return f
		}
	}
	return 0
}
