package targettest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/redline-dev/redline/target/router"
)

// units is the target's unit count the workload assumes.
func (w *Workload) units() int64 {
	if w.Units > 0 {
		return int64(w.Units)
	}
	return 4
}

// unitOf is the unit index of uid as the bootstrap routing table places it (bucket % units).
func (w *Workload) unitOf(uid int64) int64 { return (uid % 100) % w.units() }

// cross says whether p's accounts live in two units.
func (w *Workload) cross(p Payment) bool { return w.unitOf(p.FromUID) != w.unitOf(p.ToUID) }

// crossPeer draws an account of another unit than from's (from itself with one unit).
func (w *Workload) crossPeer(rng *rand.Rand, from int64) int64 {
	n := int64(w.Accounts)
	for range 100 { // bounded: most offsets land in another unit
		bucket := (from%100 + 1 + rng.Int64N(99)) % 100
		to := 100*rng.Int64N(n/100) + bucket
		if w.unitOf(to) != w.unitOf(from) {
			return to
		}
	}
	return (from + 100) % n
}

// TryStale sends a try of a cross-unit transfer's debit straight to a unit replica at addr under
// epoch, as a core zone leader with an out-of-date view would, for a transfer the core zone never
// began. It returns the replica's status code: 421 when fencing refuses it. An accepted try holds
// the payer's funds until the replica asks the core zone, which presumes an abort.
func (w *Workload) TryStale(ctx context.Context, addr string, epoch uint64, from, to, amount int64) (int, error) {
	w.mu.Lock()
	w.probes++
	key := fmt.Sprintf("t-%d-%d", w.probes, time.Now().UnixNano())
	w.mu.Unlock()
	direct := &Client{URL: "http://" + addr, HTTP: w.Client.HTTP, Header: http.Header{router.EpochHeader: {strconv.FormatUint(epoch, 10)}}}
	body := map[string]any{"key": key, "leg": "debit", "from_uid": from, "to_uid": to, "amount_minor": amount}
	var out map[string]any
	var eb ErrorBody
	return direct.do(ctx, http.MethodPost, "/internal/tcc/try", body, &out, &eb)
}
