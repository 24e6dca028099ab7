package corezone

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redline-dev/redline/target/lanes"
)

// Steps bound for the same unit travel together (package lanes): each unit has a lane for its
// tries, one for its cancels and one for its confirms (so that tries, which a client waits for,
// never queue behind the steps that finish transfers), per set of carried headers (a stress
// run's steps go to its shadow plane), each drained by stepSenders goroutines; a sender takes
// every step queued at that moment (up to stepBatchMax) into one POST /internal/tcc/batch to
// the unit's current primary, under its epoch of that moment. A try, a confirm or a cancel of
// many transfers then costs the unit one request and one group commit, and the coordinator one
// round trip: four HTTP exchanges per transfer were a third of the leader's CPU (profiled under
// `make bench-target`).
//
// Tries and cancels gather only while a unit is busy: at the rates of a 2-core machine that is
// seldom, and each costs a request and a group commit of its own. Confirms, which nobody waits
// on (the client has its answer), go in lanes of their own that linger confirmLinger for more:
// the payee's credit lands up to that much later, and the confirms of several transfers share
// one request and one commit. Measured at 700 payments/s with a fifth cross-unit: 4.2 confirms
// a request instead of 1.0, the target's CPU per payment ×0.93. (A cancel releases a refused
// payment's reservation before its answer, tcc.go: it does not linger.)

const (
	stepSenders   = 4   // batch requests in flight to one unit
	stepBatchMax  = 256 // steps per batch request (the unit's bound, PROTOCOL.md)
	stepQueueMax  = 4_096
	confirmLinger = 50 * time.Millisecond
	// stepBatchReplyMax bounds the body of a batch's answer.
	stepBatchReplyMax = 1 << 20
)

// errStepQueueFull is a unit's lane of steps full: the step is retried like an unreachable unit.
var errStepQueueFull = errors.New("queue of transfer steps full")

// stepCall is a step waiting in a lane for its answer.
type stepCall struct {
	unit    string
	headers map[string]string
	req     stepRequest
	done    chan stepReply // buffered: the sender never waits for the caller
}

// stepReply is a unit's answer to one step: its status and, on 200, the leg's state, otherwise
// the code of its error.
type stepReply struct {
	answer legAnswer
	status int
	code   string
	err    error
}

func (c *coordinator) newSteps(linger time.Duration) *lanes.Lanes[*stepCall] {
	return lanes.New(lanes.Config{Senders: stepSenders, BatchMax: stepBatchMax, Depth: stepQueueMax, Linger: linger}, c.sendSteps)
}

// closeLanes stops the senders of steps; a step still queued is answered "core replica stopping".
func (c *coordinator) closeLanes() {
	c.steps.Close()
	c.confirms.Close()
}

// laneOf names the lane of a step: its unit, tries or not, and its carried headers.
func laneOf(unit string, req stepRequest, headers map[string]string) string {
	var b strings.Builder
	b.WriteString(unit)
	if req.Step == "try" {
		b.WriteString(" try")
	}
	keys := make([]string, 0, len(headers))
	for k := range headers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b.WriteString("\n" + k + ": " + headers[k])
	}
	return b.String()
}

// call sends one step to unit's current primary with the steps gathered with it, and waits for
// its answer.
func (c *coordinator) call(ctx context.Context, unit string, req stepRequest, headers map[string]string) stepReply {
	sc := &stepCall{unit: unit, headers: headers, req: req, done: make(chan stepReply, 1)}
	steps := c.steps
	if req.Step == "confirm" {
		steps = c.confirms
	}
	if !steps.Add(laneOf(unit, req, headers), sc) {
		return stepReply{err: errStepQueueFull}
	}
	select {
	case r := <-sc.done:
		return r
	case <-ctx.Done():
		return stepReply{err: ctx.Err()}
	case <-steps.Stopped():
		return stepReply{err: errors.New("core replica stopping")}
	}
}

// stepBatch is the body of POST /internal/tcc/batch.
type stepBatch struct {
	Steps []stepRequest `json:"steps"`
}

// stepBatchAnswer is the body of a unit's 200 answer to a batch: one reply per step, in order.
type stepBatchAnswer struct {
	Replies []struct {
		Status int             `json:"status"`
		Body   json.RawMessage `json:"body"`
	} `json:"replies"`
}

// sendSteps sends one lane's batch to the unit's current primary and answers every step of it.
func (c *coordinator) sendSteps(ctx context.Context, _ string, batch []*stepCall) {
	answerAll := func(r stepReply) {
		for _, sc := range batch {
			sc.done <- r
		}
	}
	unit := batch[0].unit
	u, ok := c.n.fsm.unit(unit)
	if !ok {
		answerAll(stepReply{err: fmt.Errorf("%w %q", ErrUnknownUnit, unit)})
		return
	}
	body := stepBatch{Steps: make([]stepRequest, len(batch))}
	for i, sc := range batch {
		body.Steps[i] = sc.req
	}
	raw, err := json.Marshal(body)
	if err != nil {
		answerAll(stepReply{err: fmt.Errorf("encode steps: %w", err)})
		return
	}
	c.n.metrics.stepBatch.Observe(float64(len(batch)))
	status, ans, err := c.postSteps(ctx, u, raw, batch[0].headers)
	switch {
	case err != nil:
		answerAll(stepReply{err: err})
		return
	case status != http.StatusOK:
		answerAll(stepReply{status: status})
		return
	case len(ans.Replies) != len(batch):
		answerAll(stepReply{err: fmt.Errorf("unit %s answered %d steps of %d", unit, len(ans.Replies), len(batch))})
		return
	}
	for i, sc := range batch {
		r := stepReply{status: ans.Replies[i].Status}
		if r.status == http.StatusOK {
			if err := json.Unmarshal(ans.Replies[i].Body, &r.answer); err != nil {
				r = stepReply{err: fmt.Errorf("decode step answer: %w", err)}
			}
		} else {
			var eb errorBody
			if json.Unmarshal(ans.Replies[i].Body, &eb) == nil {
				r.code = eb.Error.Code
			}
		}
		sc.done <- r
	}
}

// postSteps sends a batch of steps to u's primary under its epoch.
func (c *coordinator) postSteps(ctx context.Context, u Unit, body []byte, headers map[string]string) (int, stepBatchAnswer, error) {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+u.PrimaryAddr()+"/internal/tcc/batch", bytes.NewReader(body))
	if err != nil {
		return 0, stepBatchAnswer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Redline-Epoch", strconv.FormatUint(u.Epoch, 10))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, stepBatchAnswer{}, err
	}
	defer drain(resp.Body)
	var ans stepBatchAnswer
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(io.LimitReader(resp.Body, stepBatchReplyMax)).Decode(&ans); err != nil {
			return 0, stepBatchAnswer{}, fmt.Errorf("decode steps answer: %w", err)
		}
	}
	return resp.StatusCode, ans, nil
}
