//go:build !linux

package load

import (
	"context"
	"errors"
	"time"
)

// loopAvailable reports whether this platform has the plain-HTTP event loop; elsewhere every
// origin goes through the worker engine.
const loopAvailable = false

type wireLoop struct{}

func newWireLoop(context.Context, *Generator) (*wireLoop, error) {
	return nil, errors.New("no event loop on this platform")
}

func (*wireLoop) run(context.Context, time.Time) error { return nil }
