package router

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"

	"github.com/redline-dev/redline/target/corezone"
	"github.com/redline-dev/redline/target/ledger"
)

// unitOf finds the unit of uid in the current table.
func (rt *router) unitOf(uid int64) (string, *reply) {
	st := rt.table.current()
	if st == nil {
		rep := errorReply(http.StatusServiceUnavailable, "routing_unavailable", "no routing table yet")
		return "", &rep
	}
	unit, ok := st.UnitOf(uid)
	if !ok {
		rep := errorReply(http.StatusBadRequest, "invalid_uid", fmt.Sprintf("uid %d is negative", uid))
		return "", &rep
	}
	return unit, nil
}

// invalid answers a request the business rules refuse (package ledger decodes and validates
// every business request, here and at the units and the core zone: one code for one input).
func invalid(err error) reply {
	code := ledger.Code(err)
	if code == "" {
		code = "bad_request" // not a request error of the ledger's: never expected
	}
	return errorReply(http.StatusBadRequest, code, err.Error())
}

func (rt *router) createAccount(r *http.Request) reply {
	body, bad := readBody(r, bodyBytesMax)
	if bad != nil {
		return *bad
	}
	a, err := ledger.ParseAccount(body)
	if err != nil {
		return invalid(err)
	}
	unit, bad := rt.unitOf(a.UID)
	if bad != nil {
		return *bad
	}
	return rt.forward(r.Context(), unit, http.MethodPost, "/v1/accounts", body, passed(r))
}

func (rt *router) getAccount(r *http.Request) reply {
	uid, err := strconv.ParseInt(r.PathValue("uid"), 10, 64)
	if err != nil {
		return errorReply(http.StatusBadRequest, "invalid_uid", "uid is not an integer: "+r.PathValue("uid"))
	}
	unit, bad := rt.unitOf(uid)
	if bad != nil {
		return *bad
	}
	return rt.forward(r.Context(), unit, http.MethodGet, "/v1/accounts/"+strconv.FormatInt(uid, 10), nil, passed(r))
}

func (rt *router) pay(r *http.Request) reply {
	body, bad := readBody(r, bodyBytesMax)
	if bad != nil {
		return *bad
	}
	p, err := ledger.ParsePayment(body)
	if err != nil {
		return invalid(err) // before anything is forwarded: no batch carries a bad payment
	}
	from, bad := rt.unitOf(p.FromUID)
	if bad != nil {
		return *bad
	}
	to, bad := rt.unitOf(p.ToUID)
	if bad != nil {
		return *bad
	}
	h := passed(r)
	if from != to {
		return rt.transfer(r.Context(), body, h) // cross-unit: the core zone coordinates it
	}
	if len(h) == 0 {
		return rt.payBatched(r.Context(), from, body)
	}
	markIdempotent(h)
	return rt.forward(r.Context(), from, http.MethodPost, "/v1/payments", body, h)
}

// getPayment asks every unit's primary: a key says nothing of its unit.
func (rt *router) getPayment(r *http.Request) reply {
	key := r.PathValue("key")
	if err := ledger.ValidKey(key); err != nil {
		return invalid(err) // no payment can have been written under it
	}
	st := rt.table.current()
	if st == nil {
		return errorReply(http.StatusServiceUnavailable, "routing_unavailable", "no routing table yet")
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	replies := make(chan reply, len(st.Units)+1)
	var wg sync.WaitGroup
	h := passed(r)
	wg.Go(func() { replies <- rt.transferOutcome(ctx, key, h) }) // a cross-unit payment
	for unit := range st.Units {
		// Each ends with its forward (bounded by forwardTimeout, cut short by cancel).
		wg.Go(func() { replies <- rt.forward(ctx, unit, http.MethodGet, "/v1/payments/"+url.PathEscape(key), nil, h) })
	}
	go func() { wg.Wait(); close(replies) }() // ends when every forward has
	var (
		found            []reply
		notFound, failed *reply
	)
	for rep := range replies {
		switch rep.status {
		case http.StatusOK:
			found = append(found, rep)
		case http.StatusNotFound:
			notFound = &rep
		default:
			if failed == nil {
				failed = &rep
			}
		}
	}
	if len(found) > 0 {
		return onePayment(key, found)
	}
	if failed != nil {
		return *failed // some unit could not say: never answer 404 for a payment that may exist
	}
	if notFound != nil {
		return *notFound
	}
	return errorReply(http.StatusNotFound, "not_found", "no payment with key "+key)
}

// onePayment is the answer to a read that found payments under key: the payment, or 409
// key_ambiguous when several differ. Keys are unique within a unit (and among the core zone's
// transfers), not across units: payers of two units may each have used one key (PROTOCOL.md).
func onePayment(key string, found []reply) reply {
	for _, rep := range found[1:] {
		if !bytes.Equal(rep.body, found[0].body) {
			return errorReply(http.StatusConflict, "key_ambiguous",
				fmt.Sprintf("%d different payments have key %s (payers of different units used it)", len(found), key))
		}
	}
	return found[0]
}

// createAccounts validates a whole bulk request, then splits it by unit and forwards each part
// in chunks of unitBulkMax. A bad account refuses the whole request before anything is sent; a
// unit's own refusal (an account it holds with another opening balance: 409 account_exists)
// refuses that chunk alone, and the parts other units applied stay (PROTOCOL.md).
func (rt *router) createAccounts(r *http.Request) reply {
	body, bad := readBody(r, bulkBodyBytesMax)
	if bad != nil {
		return *bad
	}
	accounts, err := ledger.ParseAccounts(body, bulkAccountsMax)
	if errors.Is(err, ledger.ErrTooManyAccounts) {
		return errorReply(http.StatusRequestEntityTooLarge, "too_many_accounts", err.Error())
	}
	if err != nil {
		return invalid(err)
	}
	st := rt.table.current()
	if st == nil {
		return errorReply(http.StatusServiceUnavailable, "routing_unavailable", "no routing table yet")
	}
	parts, bad := split(st, accounts)
	if bad != nil {
		return *bad
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created int
		failed  *reply
	)
	h := passed(r)
	for unit, accounts := range parts {
		// One goroutine per unit, each ending after its chunks.
		wg.Go(func() {
			for start := 0; start < len(accounts); start += unitBulkMax {
				chunk := accounts[start:min(start+unitBulkMax, len(accounts))]
				b, err := json.Marshal(struct {
					Accounts []ledger.Account `json:"accounts"`
				}{chunk})
				assert(err == nil, "encode accounts")
				rep := rt.forward(r.Context(), unit, http.MethodPost, "/v1/accounts/bulk", b, h)
				mu.Lock()
				if rep.status != http.StatusOK {
					if failed == nil {
						failed = &rep
					}
					mu.Unlock()
					return
				}
				created += len(chunk)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if failed != nil {
		return *failed
	}
	b, _ := json.Marshal(map[string]int{"created": created})
	return reply{status: http.StatusOK, body: append(b, '\n')}
}

// split groups valid accounts by unit.
func split(st *corezone.State, accounts []ledger.Account) (map[string][]ledger.Account, *reply) {
	parts := make(map[string][]ledger.Account, len(st.Units))
	for i, a := range accounts {
		unit, ok := st.UnitOf(a.UID)
		if !ok {
			rep := errorReply(http.StatusBadRequest, "invalid_uid", fmt.Sprintf("accounts[%d].uid %d is negative", i, a.UID))
			return nil, &rep
		}
		parts[unit] = append(parts[unit], a)
	}
	return parts, nil
}

// assert panics on a programmer error, never on input.
func assert(cond bool, msg string) {
	if !cond {
		panic("router: assertion failed: " + msg)
	}
}
