package testlog

import (
	"fmt"
	"strings"
	"testing"
)

func TestTail(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc"},
		{"a\nb\nc", 2, "b\nc"},
		{"a\n", 5, "a"},
		{"", 3, ""},
	} {
		if got := Tail(c.in, c.n); got != c.want {
			t.Errorf("Tail(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}

// TestBufferKeepsTheRecentLines writes past the bound: the buffer stays bounded and still ends
// with the last line written.
func TestBufferKeepsTheRecentLines(t *testing.T) {
	var b Buffer
	line := strings.Repeat("x", 1000)
	last := 0
	for i := range 3 * bufferBytesMax / 1000 {
		fmt.Fprintf(&b, "%d %s\n", i, line)
		last = i
	}
	s := b.String()
	if len(s) > bufferBytesMax+2000 {
		t.Errorf("buffer holds %d bytes, bound %d", len(s), bufferBytesMax)
	}
	if want := fmt.Sprintf("%d %s", last, line); Tail(s, 1) != want {
		t.Errorf("last line = %.20q, want %.20q", Tail(s, 1), want)
	}
}
