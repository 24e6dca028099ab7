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

// ConnectPlane is Connect for plane p: it makes sure p's stream exists and returns it. For the
// shadow plane it touches the shadow stream only, and creates it when missing without ever
// updating it (the broker's stream update races its consumer creation).
func ConnectPlane(ctx context.Context, url, name string, p shadow.Plane) (*nats.Conn, jetstream.JetStream, jetstream.Stream, error) {
	if p != shadow.Shadow {
		return Connect(ctx, url, name)
	}
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
	st, err := EnsureShadowStream(ctx, js)
	if err != nil {
		nc.Close()
		return nil, nil, nil, err
	}
	return nc, js, st, nil
}

// EnsureShadowStream returns the shadow stream, creating it when missing (with the production
// stream's configuration but for its name and subjects).
func EnsureShadowStream(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, error) {
	st, err := js.Stream(ctx, ShadowStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		st, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name: ShadowStream, Subjects: []string{ShadowSubjectPrefix + ">"}, Storage: jetstream.FileStorage,
			Retention: jetstream.LimitsPolicy, Duplicates: DuplicateWindow,
		})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			st, err = js.Stream(ctx, ShadowStream) // created meanwhile by another process
		}
	}
	if err != nil {
		return nil, fmt.Errorf("ensure stream %s: %w", ShadowStream, err)
	}
	return st, nil
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
