package load

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// parsed is what the parser made of a response.
type parsed struct {
	Status   int // 0 until the status line is read
	Done     bool
	Close    bool
	Received int64
	Rest     string // bytes after the response, not consumed
}

// parseAll feeds resp to a parser in pieces of size split, keeping unconsumed bytes the way the
// event loop does, then signals EOF when eof is true.
func parseAll(resp string, head bool, split int, eof bool) (parsed, error) {
	var p responseParser
	p.reset(head)
	var kept []byte
	for i := 0; i < len(resp) && !p.done(); i += split {
		kept = append(kept, resp[i:min(i+split, len(resp))]...)
		n, err := p.feed(kept)
		if err != nil {
			return parsed{}, err
		}
		kept = kept[n:]
		if p.done() {
			kept = append(kept, resp[min(i+split, len(resp)):]...)
		}
	}
	if eof && !p.done() {
		if err := p.eof(); err != nil {
			return parsed{}, err
		}
	}
	return parsed{Status: p.status, Done: p.done(), Close: p.close, Received: p.received, Rest: string(kept)}, nil
}

func TestResponseParser(t *testing.T) {
	tests := []struct {
		name string
		resp string
		head bool
		eof  bool
		want parsed
	}{
		{"content length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false, false,
			parsed{Status: 200, Done: true}},
		{"no reason phrase", "HTTP/1.1 204\r\n\r\n", false, false, parsed{Status: 204, Done: true}},
		{"chunked with extension and trailer", "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\nA\r\n0123456789\r\n0\r\nT: v\r\n\r\n", false, false,
			parsed{Status: 201, Done: true}},
		{"interim response first", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, false,
			parsed{Status: 200, Done: true}},
		{"head has no body", "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", true, false, parsed{Status: 200, Done: true}},
		{"not modified has no body", "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n", false, false, parsed{Status: 304, Done: true}},
		{"connection close", "HTTP/1.1 503 Busy\r\nConnection: keep-alive, Close\r\nContent-Length: 1\r\n\r\nx", false, false,
			parsed{Status: 503, Done: true, Close: true}},
		{"http/1.0 closes", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", false, false, parsed{Status: 200, Done: true, Close: true}},
		{"body until close", "HTTP/1.1 200 OK\r\n\r\nsome body", false, true, parsed{Status: 200, Done: true, Close: true}},
		{"bare LF lines", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", false, false, parsed{Status: 200, Done: true}},
		{"bytes after the response", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA", false, false,
			parsed{Status: 200, Done: true, Rest: "EXTRA"}},
		{"incomplete", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok", false, false, parsed{Status: 200}},
	}
	for _, tt := range tests {
		for _, split := range []int{1, 3, 7, 1 << 20} {
			got, err := parseAll(tt.resp, tt.head, split, tt.eof)
			if err != nil {
				t.Errorf("%s, split %d: %v", tt.name, split, err)
				continue
			}
			want := tt.want
			want.Received = int64(len(tt.resp) - len(want.Rest)) // every byte of the response counts
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("%s, split %d (-got +want):\n%s", tt.name, split, diff)
			}
		}
	}
}

func TestResponseParserErrors(t *testing.T) {
	tests := []struct {
		name string
		resp string
		eof  bool
		want error
	}{
		{"not http", "SSH-2.0-OpenSSH\r\n", false, ErrBadResponse},
		{"bad status", "HTTP/1.1 2x0 OK\r\n", false, ErrBadResponse},
		{"http/2 preface", "HTTP/2 200\r\n", false, ErrBadResponse},
		{"header without colon", "HTTP/1.1 200 OK\r\nnonsense\r\n\r\n", false, ErrBadResponse},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false, ErrBadResponse},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", false, ErrBadResponse},
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false, ErrBadResponse},
		{"chunk without CRLF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\naXX\r\n", false, ErrBadResponse},
		{"switching protocols", "HTTP/1.1 101 Switching\r\n\r\n", false, ErrBadResponse},
		{"line too long", "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", responseLineBytesMax+10), false, ErrBadResponse},
		{"head too long", "HTTP/1.1 200 OK\r\n" + strings.Repeat("X: y\r\n", responseHeaderBytesMax/6+1), false, ErrBadResponse},
		{"closed early", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok", true, errUnexpectedEOF},
	}
	for _, tt := range tests {
		_, err := parseAll(tt.resp, false, 1<<20, tt.eof)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
}

// FuzzResponseParser checks that no input panics the parser, that it consumes the same bytes
// however the input is split, and that it never asks to keep more than a line's bound.
func FuzzResponseParser(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 204 No\r\nConnection: close\r\n\r\n",
		"HTTP/1.1 200 OK\r\n\r\nuntil eof",
	} {
		f.Add(s, uint8(3))
	}
	f.Fuzz(func(t *testing.T, resp string, split uint8) {
		whole, errWhole := parseAll(resp, false, 1<<20, true)
		pieces, errPieces := parseAll(resp, false, int(split)+1, true)
		if (errWhole == nil) != (errPieces == nil) {
			t.Fatalf("whole: %v; in pieces of %d: %v", errWhole, int(split)+1, errPieces)
		}
		if errWhole == nil && whole != pieces {
			t.Fatalf("whole %+v, in pieces %+v", whole, pieces)
		}
		if errWhole == nil && len(whole.Rest) > 0 && !whole.Done {
			t.Fatalf("kept %d bytes of an unfinished response", len(whole.Rest))
		}
	})
}

func TestAppendRequest(t *testing.T) {
	reqs := []Request{
		{Name: "get", Weight: 1, Method: "GET", URL: "http://127.0.0.1:8080"},
		{Name: "pay", Weight: 1, Method: "POST", URL: "http://127.0.0.1:8080/pay/{{uid}}?x=1",
			Header: map[string][]string{"idempotency-key": {"k-{{seq}}"}}, Body: `{"a":{{amount}}}`},
		{Name: "put", Weight: 1, Method: "PUT", URL: "http://h.example/p", Header: map[string][]string{"Host": {"virtual.example"}}},
	}
	m, err := newMix(reqs)
	if err != nil {
		t.Fatal(err)
	}
	v := values{seq: 5, uid: 42, amount: 1999}
	var scratch [2][]byte
	var got []string
	for i := range m.ops {
		w := newWireOp(&m.ops[i])
		got = append(got, string(w.appendRequest(nil, &m.ops[i], &scratch, &v)))
	}
	want := []string{
		"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: redline\r\n\r\n",
		"POST /pay/42?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: redline\r\nIdempotency-Key: k-5\r\nContent-Length: 10\r\n\r\n{\"a\":1999}",
		"PUT /p HTTP/1.1\r\nHost: virtual.example\r\nUser-Agent: redline\r\nContent-Length: 0\r\n\r\n",
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("requests (-got +want):\n%s", diff)
	}
	if !m.ops[1].replayable() || m.ops[0].replayable() == false || (&op{method: "POST"}).replayable() {
		t.Error("replayable: want GET and keyed POST replayable, bare POST not")
	}
}
