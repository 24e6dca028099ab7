// Package events is paycell's event plumbing: the event a committed payment emits, the
// JetStream stream that carries it, and the broker (an embedded nats-server) that holds it.
//
// Durability: the embedded broker runs with SyncAlways, so a publish acknowledged by JetStream
// is on disk. An external server (--nats URL) keeps its own setting; with JetStream's default it
// fsyncs every 2 minutes, which is then the window of events a crash of that server can lose.
// Duplicates are dropped by Nats-Msg-Id (= the event id) within DuplicateWindow; beyond it the
// consumers' inboxes still apply an event once, but the stream would hold it twice.
package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/redline-dev/redline/shadow"
)

// The stream and its subjects.
const (
	// Stream holds every unit's events.
	Stream = "PAYCELL_EVENTS"
	// SubjectPrefix + unit is a unit's subject.
	SubjectPrefix = "paycell.events."
	// DuplicateWindow is how long the stream remembers an event id: a relay that republishes
	// after a failover or restart does so well within it.
	DuplicateWindow = time.Hour
	// HeaderSeq carries the event's seq in its unit's history (the relay's resume point).
	HeaderSeq = "Redline-Seq"
	// connectWait bounds one connection attempt.
	connectWait = 2 * time.Second
)

// Groups are the consumer groups, each a durable consumer of the whole stream.
func Groups() []string { return []string{"ledger", "settlement", "notification"} }

// Errors of the events package.
var (
	ErrBadEvent = errors.New("malformed event")
)

// Event is what a committed payment emits: its identity and its money movement.
type Event struct {
	ID          string `json:"id"`
	Unit        string `json:"unit"`
	Seq         int64  `json:"seq"`
	Key         string `json:"key"`
	FromUID     int64  `json:"from_uid"`
	ToUID       int64  `json:"to_uid"`
	AmountMinor int64  `json:"amount_minor"`
}

// ID is the event id of the payment at seq of unit's history.
func ID(unit string, seq int64) string { return unit + "-" + strconv.FormatInt(seq, 10) }

// Subject is unit's subject.
func Subject(unit string) string { return SubjectPrefix + unit }

// Message encodes e as a JetStream message with its id as Nats-Msg-Id.
func Message(e Event) (*nats.Msg, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	m := nats.NewMsg(Subject(e.Unit))
	m.Data = b
	m.Header.Set(jetstream.MsgIDHeader, e.ID)
	m.Header.Set(HeaderSeq, strconv.FormatInt(e.Seq, 10))
	return m, nil
}

// Decode reads an event from a message body.
func Decode(b []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("decode event: %w: %w", ErrBadEvent, err)
	}
	if e.ID == "" || e.Unit == "" || e.Key == "" {
		return e, fmt.Errorf("decode event: %w: missing id, unit or key", ErrBadEvent)
	}
	return e, nil
}

// Connect connects to the broker at url and makes sure the stream exists. The connection
// reconnects on its own forever; the caller closes it.
func Connect(ctx context.Context, url, name string) (*nats.Conn, jetstream.JetStream, jetstream.Stream, error) {
	return ConnectPlane(ctx, url, name, shadow.Production)
}

// EnsureStream is EnsureStreamOf for production's stream.
func EnsureStream(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, error) {
	return EnsureStreamOf(ctx, js, shadow.Production)
}

// EnsureStreamOf returns plane p's stream, creating it when missing and updating it only when its
// configuration differs: every relay calls it on connect, and an update that races a consumer's
// creation trips a data race inside nats-server (seen under -race), so a matching stream is left
// alone.
func EnsureStreamOf(ctx context.Context, js jetstream.JetStream, p shadow.Plane) (jetstream.Stream, error) {
	want := jetstream.StreamConfig{
		Name: StreamOf(p), Subjects: []string{SubjectOf(p, ">")}, Storage: jetstream.FileStorage,
		Retention: jetstream.LimitsPolicy, Duplicates: DuplicateWindow,
	}
	st, err := js.Stream(ctx, want.Name)
	if err == nil && sameStream(st.CachedInfo().Config, want) {
		return st, nil
	}
	if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("ensure stream %s: %w", want.Name, err)
	}
	st, err = js.CreateOrUpdateStream(ctx, want)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		st, err = js.Stream(ctx, want.Name) // created meanwhile by another process
	}
	if err != nil {
		return nil, fmt.Errorf("ensure stream %s: %w", want.Name, err)
	}
	return st, nil
}

// sameStream reports whether a stream's configuration has every setting EnsureStreamOf sets.
func sameStream(have, want jetstream.StreamConfig) bool {
	return slices.Equal(have.Subjects, want.Subjects) && have.Storage == want.Storage &&
		have.Retention == want.Retention && have.Duplicates == want.Duplicates
}

// LastSeq returns the seq of unit's last event in the stream, 0 when it has none.
func LastSeq(ctx context.Context, st jetstream.Stream, unit string) (int64, error) {
	m, err := st.GetLastMsgForSubject(ctx, Subject(unit))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read last event of unit %s: %w", unit, err)
	}
	seq, err := strconv.ParseInt(strings.TrimSpace(m.Header.Get(HeaderSeq)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read last event of unit %s: %w: %w", unit, ErrBadEvent, err)
	}
	return seq, nil
}

// scanIdle is how long Scan waits for a message before it decides the stream is read.
const scanIdle = 2 * time.Second

// Scan reads the whole stream, in order, calling fn with every event and its Nats-Msg-Id; it
// returns how many messages it read. An undecodable message is passed as a zero Event.
func Scan(ctx context.Context, js jetstream.JetStream, fn func(e Event, msgID string)) (int64, error) {
	return ScanStream(ctx, js, Stream, fn)
}

// ScanStream is Scan of the named stream (Stream or ShadowStream).
func ScanStream(ctx context.Context, js jetstream.JetStream, stream string, fn func(e Event, msgID string)) (int64, error) {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("scan stream: %w", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("scan stream: %w", err)
	}
	total := int64(info.State.Msgs)
	if total == 0 {
		return 0, nil
	}
	c, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return 0, fmt.Errorf("scan stream: %w", err)
	}
	var n int64
	for n < total {
		batch, err := c.Fetch(min(int(total-n), 4096), jetstream.FetchMaxWait(scanIdle))
		if err != nil {
			return n, fmt.Errorf("scan stream: %w", err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			n++
			e, _ := Decode(m.Data())
			fn(e, m.Headers().Get(jetstream.MsgIDHeader))
		}
		if err := batch.Error(); err != nil {
			return n, fmt.Errorf("scan stream: %w", err)
		}
		if got == 0 {
			return n, fmt.Errorf("scan stream: read %d of %d messages", n, total)
		}
	}
	return n, nil
}
