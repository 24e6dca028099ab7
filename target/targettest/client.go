package targettest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Client calls the business API (the router).
type Client struct {
	URL  string
	HTTP *http.Client
	// Header is added to every request (nil: none).
	Header http.Header
}

// NewClient returns a client of the business API at url, with connections for workers at once.
func NewClient(url string, workers int) *Client {
	return &Client{URL: url, HTTP: &http.Client{
		Timeout:   requestTimeout,
		Transport: &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: 2 * workers, IdleConnTimeout: 30 * time.Second},
	}}
}

// requestTimeout bounds one call to the business API: longer than the router's failover wait.
const requestTimeout = 10 * time.Second

// Payment is the body of POST /v1/payments.
type Payment struct {
	Key         string `json:"key"`
	FromUID     int64  `json:"from_uid"`
	ToUID       int64  `json:"to_uid"`
	AmountMinor int64  `json:"amount_minor"`
}

// Outcome is a payment's stored outcome.
type Outcome struct {
	Key         string `json:"key"`
	FromUID     int64  `json:"from_uid"`
	ToUID       int64  `json:"to_uid"`
	AmountMinor int64  `json:"amount_minor"`
	Status      string `json:"status"`
	Reason      string `json:"reason,omitempty"`
}

// Account is the body of GET /v1/accounts/{uid} and an entry of a bulk creation.
type Account struct {
	UID          int64 `json:"uid"`
	BalanceMinor int64 `json:"balance_minor"`
}

// ErrorBody is the JSON error of every target endpoint.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Pay posts a payment; it returns the status and, on 200, the outcome (on others, the error).
func (c *Client) Pay(ctx context.Context, p Payment) (int, Outcome, ErrorBody, error) {
	var out Outcome
	var eb ErrorBody
	status, err := c.do(ctx, http.MethodPost, "/v1/payments", p, &out, &eb)
	return status, out, eb, err
}

// Payment reads a payment's outcome: 200 with it, 404 when the key is unknown.
func (c *Client) Payment(ctx context.Context, key string) (int, Outcome, error) {
	var out Outcome
	status, err := c.do(ctx, http.MethodGet, "/v1/payments/"+url.PathEscape(key), nil, &out, nil)
	return status, out, err
}

// Account reads an account.
func (c *Client) Account(ctx context.Context, uid int64) (int, Account, error) {
	var a Account
	status, err := c.do(ctx, http.MethodGet, "/v1/accounts/"+strconv.FormatInt(uid, 10), nil, &a, nil)
	return status, a, err
}

// CreateAccounts creates accounts uids [0, n) with balance each, in bulk requests.
func (c *Client) CreateAccounts(ctx context.Context, n int, balance int64) error {
	const perRequest = 50_000
	for start := 0; start < n; start += perRequest {
		var req struct {
			Accounts []Account `json:"accounts"`
		}
		for uid := start; uid < min(start+perRequest, n); uid++ {
			req.Accounts = append(req.Accounts, Account{UID: int64(uid), BalanceMinor: balance})
		}
		var eb ErrorBody
		status, err := c.do(ctx, http.MethodPost, "/v1/accounts/bulk", req, nil, &eb)
		if err != nil {
			return fmt.Errorf("create accounts: %w", err)
		}
		if status != http.StatusOK {
			return fmt.Errorf("create accounts: status %d %s: %s", status, eb.Error.Code, eb.Error.Message)
		}
	}
	return nil
}

// do sends one request; a 200 answer is decoded into ok, any other into fail (when not nil).
func (c *Client) do(ctx context.Context, method, path string, in, ok, fail any) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, body)
	if err != nil {
		return 0, err
	}
	for k, v := range c.Header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, replyBytesMax))
	if err != nil {
		return resp.StatusCode, err
	}
	out := fail
	if resp.StatusCode == http.StatusOK {
		out = ok
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}
