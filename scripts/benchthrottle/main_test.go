package main

import (
	"os"
	"path/filepath"
	"testing"
)

// Two sampling instants 36 ms apart (a phase's last and the next phase's first) are two samples,
// each the sum of its groups, never one sample of twice the lag.
func TestLagSeriesKeepsCloseInstantsApart(t *testing.T) {
	dir := t.TempDir()
	timeline := `{"kind":"gauge","gauge":{"time":"2026-11-27T03:35:38.007820126Z","phase":"throttled","name":"consumer_lag.ledger","value":24}}
{"kind":"gauge","gauge":{"time":"2026-11-27T03:35:38.007820126Z","phase":"throttled","name":"consumer_lag.settlement","value":9528}}
{"kind":"gauge","gauge":{"time":"2026-11-27T03:35:38.043489362Z","phase":"drain","name":"consumer_lag.ledger","value":20}}
{"kind":"gauge","gauge":{"time":"2026-11-27T03:35:38.043489362Z","phase":"drain","name":"consumer_lag.settlement","value":9500}}
{"kind":"gauge","gauge":{"time":"2026-11-27T03:35:38.043489362Z","phase":"drain","name":"shadow_leaks","value":7}}
`
	if err := os.WriteFile(filepath.Join(dir, "timeline.jsonl"), []byte(timeline), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := lagSeries(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].value != 9552 || got[1].value != 9520 || !got[0].at.Before(got[1].at) {
		t.Fatalf("lag series %+v, want 9552 then 9520", got)
	}
}

// Pooled over runs, counts add up and maxima stay the worst run's.
func TestPoolAuditFigures(t *testing.T) {
	for _, c := range []struct {
		name         string
		sum, v, want int64
	}{
		{"consumed_ledger", 39000, 39000, 78000},
		{"production.events_published", 0, 5, 5},
		{"max_lag_settlement", 8049, 7970, 8049},
		{"production.drain_ms_settlement", 810, 1091, 1091},
	} {
		if got := pool(c.name, c.sum, c.v); got != c.want {
			t.Errorf("pool(%s, %d, %d) = %d, want %d", c.name, c.sum, c.v, got, c.want)
		}
	}
}
