// Package testlog keeps what the code under a test logs, bounded, and shows its last lines when
// the test fails: a failure on CI then says what the target was doing, not only what the test saw.
package testlog

import (
	"bufio"
	"bytes"
	"strings"
	"sync"
	"testing"
)

// bufferBytesMax bounds a Buffer: past it the older half is dropped.
const bufferBytesMax = 4 << 20

// Buffer is a bounded log buffer, safe for concurrent writers and readers.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > bufferBytesMax { // keep the recent half
		rest := b.buf.Bytes()[b.buf.Len()/2:]
		b.buf = *bytes.NewBuffer(append([]byte(nil), rest...))
	}
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// OnFailure returns a Buffer whose last lines t logs under title if it fails.
func OnFailure(t testing.TB, title string, lines int) *Buffer {
	b := &Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s (last %d lines):\n%s", title, lines, Tail(b.String(), lines))
		}
	})
	return b
}

// Tail returns the last n lines of s.
func Tail(s string, n int) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
