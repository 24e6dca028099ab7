package events

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/redline-dev/redline/shadow"
)

// The shadow plane's stream: the events of stress traffic, kept apart from production's so that
// no production consumer ever reads one.
const (
	// ShadowStream holds every unit's shadow events.
	ShadowStream = "PAYCELL_SHADOW_EVENTS"
	// ShadowSubjectPrefix + unit is a unit's shadow subject.
	ShadowSubjectPrefix = "paycell.shadow.events."
)

// StreamOf is the stream of plane p.
func StreamOf(p shadow.Plane) string {
	if p == shadow.Shadow {
		return ShadowStream
	}
	return Stream
}

// SubjectOf is unit's subject in plane p.
func SubjectOf(p shadow.Plane, unit string) string {
	if p == shadow.Shadow {
		return ShadowSubjectPrefix + unit
	}
	return Subject(unit)
}

// MessageOn is Message on plane p's subject.
func MessageOn(p shadow.Plane, e Event) (*nats.Msg, error) {
	m, err := Message(e)
	if err != nil {
		return nil, err
	}
	m.Subject = SubjectOf(p, e.Unit)
	return m, nil
}

// ConnectPlane connects to the broker at url and makes sure plane p's stream exists (touching no
// other plane's stream). The connection reconnects on its own forever; the caller closes it.
func ConnectPlane(ctx context.Context, url, name string, p shadow.Plane) (*nats.Conn, jetstream.JetStream, jetstream.Stream, error) {
	nc, err := nats.Connect(url, nats.Name(name), nats.Timeout(connectWait), nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("connect to broker %s: %w", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	st, err := EnsureStreamOf(ctx, js, p)
	if err != nil {
		nc.Close()
		return nil, nil, nil, err
	}
	return nc, js, st, nil
}

// LastSeqOn is LastSeq on plane p's subject of unit.
func LastSeqOn(ctx context.Context, st jetstream.Stream, p shadow.Plane, unit string) (int64, error) {
	m, err := st.GetLastMsgForSubject(ctx, SubjectOf(p, unit))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read last %s event of unit %s: %w", p, unit, err)
	}
	seq, err := strconv.ParseInt(strings.TrimSpace(m.Header.Get(HeaderSeq)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read last event of unit %s: %w: %w", unit, ErrBadEvent, err)
	}
	return seq, nil
}
