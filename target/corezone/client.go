package corezone

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
)

// Client calls the core zone's HTTP API, trying each replica in turn until one answers.
type Client struct {
	addrs []string
	http  *http.Client
	good  atomic.Int32 // index of the replica that answered last
}

// NewClient returns a client of the replicas at addrs (host:port). hc nil means a client of
// its own; calls are bounded by their contexts.
func NewClient(addrs []string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2}}
	}
	return &Client{addrs: addrs, http: hc}
}

// errUnavailable marks an answer that another replica may do better on.
var errUnavailable = errors.New("core replica unavailable")

// Routing returns the routing table and unit configurations.
func (c *Client) Routing(ctx context.Context) (State, error) {
	var s State
	err := c.call(ctx, http.MethodGet, "/v1/routing", nil, &s)
	if err != nil {
		return State{}, fmt.Errorf("read routing: %w", err)
	}
	if !s.Initialized() {
		return State{}, fmt.Errorf("read routing: %w", ErrNotInitialized)
	}
	return s, nil
}

// Promote makes the standby of unit its primary, if epoch is still the unit's epoch.
func (c *Client) Promote(ctx context.Context, unit string, epoch uint64) (Unit, error) {
	return c.change(ctx, unit, OpPromote, ChangeRequest{Epoch: epoch})
}

// DropStandby takes the standby out of unit's configuration, if epoch is still the unit's epoch.
func (c *Client) DropStandby(ctx context.Context, unit string, epoch uint64) (Unit, error) {
	return c.change(ctx, unit, OpDropStandby, ChangeRequest{Epoch: epoch})
}

// AddStandby makes replica (which caught up) the standby of unit, if epoch is still the unit's epoch.
func (c *Client) AddStandby(ctx context.Context, unit string, epoch uint64, replica, addr string) (Unit, error) {
	return c.change(ctx, unit, OpAddStandby, ChangeRequest{Epoch: epoch, Replica: replica, Addr: addr})
}

func (c *Client) change(ctx context.Context, unit string, op Op, req ChangeRequest) (Unit, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return Unit{}, fmt.Errorf("%s unit %s: %w", op, unit, err)
	}
	var u Unit
	if err := c.call(ctx, http.MethodPost, "/v1/units/"+unit+"/"+string(op), b, &u); err != nil {
		return Unit{}, fmt.Errorf("%s unit %s: %w", op, unit, err)
	}
	return u, nil
}

// Status returns the view of the replica at addr (not of any replica: the caller chose it).
func (c *Client) Status(ctx context.Context, addr string) (Status, error) {
	var s Status
	if err := c.do(ctx, addr, http.MethodGet, "/v1/status", nil, &s); err != nil {
		return Status{}, fmt.Errorf("read status of %s: %w", addr, err)
	}
	return s, nil
}

// call tries the replicas, starting with the one that answered last, until one answers
// something other than unavailable.
func (c *Client) call(ctx context.Context, method, path string, body []byte, out any) error {
	if len(c.addrs) == 0 {
		return fmt.Errorf("%w: no core addresses", errUnavailable)
	}
	start := int(c.good.Load())
	var errs []error
	for i := range c.addrs {
		k := (start + i) % len(c.addrs)
		err := c.do(ctx, c.addrs[k], method, path, body, out)
		if err == nil {
			c.good.Store(int32(k))
			return nil
		}
		if !errors.Is(err, errUnavailable) || ctx.Err() != nil {
			return err
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c *Client) do(ctx context.Context, addr, method, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", errUnavailable, err)
	}
	defer drain(resp.Body)
	data, err := io.ReadAll(io.LimitReader(resp.Body, stateBytesMax))
	if err != nil {
		return fmt.Errorf("%w: read %s: %w", errUnavailable, addr, err)
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode answer of %s: %w", addr, err)
		}
		return nil
	}
	var eb errorBody
	_ = json.Unmarshal(data, &eb)
	if resp.StatusCode == http.StatusServiceUnavailable {
		return fmt.Errorf("%w: %s: %s", errUnavailable, eb.Error.Code, eb.Error.Message)
	}
	return fmt.Errorf("%w: %s", codeError(eb.Error.Code), eb.Error.Message)
}

// codeError maps an error code of the API back to its sentinel.
func codeError(code string) error {
	switch code {
	case "stale_epoch":
		return ErrStaleEpoch
	case "standby_not_ok":
		return ErrStandbyNotOK
	case "standby_present":
		return ErrStandbyPresent
	case "unknown_unit":
		return ErrUnknownUnit
	case "bad_request":
		return ErrBadCommand
	default:
		return fmt.Errorf("core error %q", code)
	}
}

// Transfer posts a cross-unit payment (body as the business API received it, headers carried
// to the participants) to the leader and returns its answer as is: the status and the body.
func (c *Client) Transfer(ctx context.Context, body []byte, h http.Header) (int, []byte, error) {
	return c.raw(ctx, http.MethodPost, "/v1/transfers", body, h)
}

// TransferOutcome reads a cross-unit payment's outcome (GET /v1/payments/{key} of the business
// API), as is. h carries the reader's stress marker: each plane reads only its own transfers.
func (c *Client) TransferOutcome(ctx context.Context, key string, h http.Header) (int, []byte, error) {
	return c.raw(ctx, http.MethodGet, "/v1/transfers/"+url.PathEscape(key), nil, h)
}

// raw tries the replicas until one that leads answers, and returns that answer unread.
func (c *Client) raw(ctx context.Context, method, path string, body []byte, h http.Header) (int, []byte, error) {
	if len(c.addrs) == 0 {
		return 0, nil, fmt.Errorf("%w: no core addresses", errUnavailable)
	}
	start := int(c.good.Load())
	var errs []error
	for i := range c.addrs {
		k := (start + i) % len(c.addrs)
		req, err := http.NewRequestWithContext(ctx, method, "http://"+c.addrs[k]+path, bytes.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		for name, v := range h {
			req.Header[name] = v
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.http.Do(req)
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, stateBytesMax))
		drain(resp.Body)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if resp.StatusCode == http.StatusServiceUnavailable {
			var eb errorBody
			if json.Unmarshal(data, &eb) == nil && notLeading[eb.Error.Code] {
				errs = append(errs, fmt.Errorf("%s: %s", c.addrs[k], eb.Error.Code))
				continue
			}
		}
		c.good.Store(int32(k))
		return resp.StatusCode, data, nil
	}
	return 0, nil, fmt.Errorf("%w: %w", errUnavailable, errors.Join(errs...))
}

// notLeading are the codes of a replica that cannot answer for the leader.
var notLeading = map[string]bool{"not_leader": true, "no_leader": true, "leader_unreachable": true, "not_initialized": true}
