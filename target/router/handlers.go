package router

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"

	"github.com/redline-dev/redline/target/corezone"
)

const keyBytesMax = 256

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

func malformed(err error) reply {
	return errorReply(http.StatusBadRequest, "malformed_json", err.Error())
}

func missing(field string) reply {
	return errorReply(http.StatusBadRequest, "missing_field", field+" is required")
}

func (rt *router) createAccount(r *http.Request) reply {
	body, bad := readBody(r, bodyBytesMax)
	if bad != nil {
		return *bad
	}
	var a struct {
		UID *int64 `json:"uid"`
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return malformed(err)
	}
	if a.UID == nil {
		return missing("uid")
	}
	unit, bad := rt.unitOf(*a.UID)
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
	var p struct {
		Key     string `json:"key"`
		FromUID *int64 `json:"from_uid"`
		ToUID   *int64 `json:"to_uid"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return malformed(err)
	}
	switch {
	case p.Key == "":
		return missing("key")
	case p.FromUID == nil:
		return missing("from_uid")
	case p.ToUID == nil:
		return missing("to_uid")
	}
	from, bad := rt.unitOf(*p.FromUID)
	if bad != nil {
		return *bad
	}
	to, bad := rt.unitOf(*p.ToUID)
	if bad != nil {
		return *bad
	}
	h := passed(r)
	if from != to {
		return rt.transfer(r.Context(), body, h) // cross-unit: the core zone coordinates it
	}
	if len(h) == 0 {
		return rt.payBatched(r.Context(), from, p.Key, body)
	}
	// Go's transport retries a request on a broken kept-alive connection when it is marked idempotent.
	h.Set("Idempotency-Key", p.Key)
	return rt.forward(r.Context(), from, http.MethodPost, "/v1/payments", body, h)
}

// getPayment asks every unit's primary: a key says nothing of its unit.
func (rt *router) getPayment(r *http.Request) reply {
	key := r.PathValue("key")
	if key == "" || len(key) > keyBytesMax {
		return errorReply(http.StatusBadRequest, "invalid_key", fmt.Sprintf("key must have 1..%d bytes", keyBytesMax))
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
	var notFound, failed *reply
	for rep := range replies {
		switch rep.status {
		case http.StatusOK:
			cancel()
			return rep
		case http.StatusNotFound:
			notFound = &rep
		default:
			if failed == nil {
				failed = &rep
			}
		}
	}
	if failed != nil {
		return *failed // some unit could not say: never answer 404 for a payment that may exist
	}
	if notFound != nil {
		return *notFound
	}
	return errorReply(http.StatusNotFound, "not_found", "no payment with key "+key)
}

// createAccounts splits a bulk request by unit and forwards each part in chunks of unitBulkMax.
// It is not atomic across units: on an error, parts sent before it stay created.
func (rt *router) createAccounts(r *http.Request) reply {
	body, bad := readBody(r, bulkBodyBytesMax)
	if bad != nil {
		return *bad
	}
	var req struct {
		Accounts []json.RawMessage `json:"accounts"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return malformed(err)
	}
	if len(req.Accounts) == 0 {
		return missing("accounts")
	}
	if len(req.Accounts) > bulkAccountsMax {
		return errorReply(http.StatusRequestEntityTooLarge, "too_many_accounts", fmt.Sprintf("%d accounts, at most %d per request", len(req.Accounts), bulkAccountsMax))
	}
	st := rt.table.current()
	if st == nil {
		return errorReply(http.StatusServiceUnavailable, "routing_unavailable", "no routing table yet")
	}
	parts, bad := split(st, req.Accounts)
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
				b, _ := json.Marshal(struct {
					Accounts []json.RawMessage `json:"accounts"`
				}{chunk})
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

// split groups accounts by unit.
func split(st *corezone.State, accounts []json.RawMessage) (map[string][]json.RawMessage, *reply) {
	parts := make(map[string][]json.RawMessage, len(st.Units))
	for i, raw := range accounts {
		var a struct {
			UID *int64 `json:"uid"`
		}
		if err := json.Unmarshal(raw, &a); err != nil {
			rep := malformed(fmt.Errorf("accounts[%d]: %w", i, err))
			return nil, &rep
		}
		if a.UID == nil {
			rep := missing(fmt.Sprintf("accounts[%d].uid", i))
			return nil, &rep
		}
		unit, ok := st.UnitOf(*a.UID)
		if !ok {
			rep := errorReply(http.StatusBadRequest, "invalid_uid", fmt.Sprintf("accounts[%d].uid %d is negative", i, *a.UID))
			return nil, &rep
		}
		parts[unit] = append(parts[unit], raw)
	}
	return parts, nil
}
