package load

import (
	"bytes"
	"fmt"
)

// responseLineBytesMax bounds one line of a response head (status line, header, chunk size) and
// so the bytes the parser asks its caller to keep.
const responseLineBytesMax = 8 << 10

type parseState uint8

const (
	stStatus    parseState = iota // want the status line
	stHeader                      // want a header line or the empty line
	stBody                        // counting down a Content-Length
	stUntilEOF                    // the body ends when the server closes
	stChunkSize                   // want a chunk-size line
	stChunkData                   // counting down a chunk
	stChunkEnd                    // want the CRLF after a chunk
	stTrailer                     // want a trailer line or the empty line
	stDone
)

// responseParser reads one HTTP/1.1 response incrementally, from any split of its bytes, and
// keeps nothing of the body: it only counts it. It is the plain-HTTP engine's reader; the
// bytes of its input come from the network, so it is fuzzed (FuzzResponseParser).
type responseParser struct {
	state     parseState
	head      bool // the request was HEAD: no body whatever the headers say
	status    int
	remaining int64 // bytes left of the body or the current chunk
	length    int64 // Content-Length, -1 when absent
	chunked   bool
	close     bool // the connection cannot be reused after this response
	headBytes int  // bytes of the status line and headers so far
	received  int64
}

// reset prepares p for the response to a request; head is true for HEAD requests.
func (p *responseParser) reset(head bool) { *p = responseParser{head: head, length: -1} }

// done reports whether the response is complete.
func (p *responseParser) done() bool { return p.state == stDone }

// feed parses b. It returns how many bytes it consumed; the caller keeps the rest (an
// incomplete line, never more than responseLineBytesMax) and feeds it again with more. Bytes
// after the end of the response are not consumed.
func (p *responseParser) feed(b []byte) (int, error) {
	n := 0
	for n < len(b) && p.state != stDone {
		m, err := p.step(b[n:])
		if err != nil {
			return n, err
		}
		if m == 0 {
			if len(b)-n > responseLineBytesMax {
				return n, fmt.Errorf("%w: line longer than %d bytes", ErrBadResponse, responseLineBytesMax)
			}
			break
		}
		n += m
		p.received += int64(m)
	}
	return n, nil
}

// eof tells p that the server closed the connection; it returns an error unless that ends the
// response.
func (p *responseParser) eof() error {
	if p.state == stUntilEOF {
		p.state = stDone
		return nil
	}
	if p.state == stDone {
		return nil
	}
	return errUnexpectedEOF
}

// step consumes one line or one run of body bytes; 0 means it needs more input.
func (p *responseParser) step(b []byte) (int, error) {
	switch p.state {
	case stBody, stChunkData:
		m := int64(len(b))
		if m > p.remaining {
			m = p.remaining
		}
		p.remaining -= m
		if p.remaining == 0 {
			if p.state == stBody {
				p.state = stDone
			} else {
				p.state = stChunkEnd
			}
		}
		return int(m), nil
	case stUntilEOF:
		return len(b), nil
	}
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return 0, nil
	}
	line := bytes.TrimSuffix(b[:i], []byte("\r"))
	if p.state == stStatus || p.state == stHeader {
		p.headBytes += i + 1
		if p.headBytes > responseHeaderBytesMax {
			return 0, fmt.Errorf("%w: head longer than %d bytes", ErrBadResponse, responseHeaderBytesMax)
		}
	}
	var err error
	switch p.state {
	case stStatus:
		err = p.statusLine(line)
	case stHeader:
		err = p.header(line)
	case stChunkSize:
		err = p.chunkSize(line)
	case stChunkEnd:
		if len(line) != 0 {
			err = fmt.Errorf("%w: chunk not followed by CRLF", ErrBadResponse)
		}
		p.state = stChunkSize
	case stTrailer:
		if len(line) == 0 {
			p.state = stDone
		}
	}
	return i + 1, err
}

func (p *responseParser) statusLine(line []byte) error {
	// HTTP/1.x SP 3DIGIT [SP reason]
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || (line[7] != '0' && line[7] != '1') ||
		line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
		return fmt.Errorf("%w: status line %q", ErrBadResponse, truncate(string(line), 40))
	}
	status := 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return fmt.Errorf("%w: status line %q", ErrBadResponse, truncate(string(line), 40))
		}
		status = status*10 + int(c-'0')
	}
	if status < 100 {
		return fmt.Errorf("%w: status %d", ErrBadResponse, status)
	}
	p.status = status
	p.close = line[7] == '0' // HTTP/1.0 closes unless it says keep-alive; Redline does not ask
	p.state = stHeader
	return nil
}

func (p *responseParser) header(line []byte) error {
	if len(line) == 0 {
		return p.endHead()
	}
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return fmt.Errorf("%w: header line %q", ErrBadResponse, truncate(string(line), 40))
	}
	name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
	switch {
	case bytes.EqualFold(name, []byte("Content-Length")):
		n, ok := parseDecimal(value)
		if !ok || (p.length >= 0 && p.length != n) {
			return fmt.Errorf("%w: Content-Length %q", ErrBadResponse, truncate(string(value), 24))
		}
		p.length = n
	case bytes.EqualFold(name, []byte("Transfer-Encoding")):
		// Only chunked is framing; anything else stacked on it ends with the connection.
		p.chunked = bytes.EqualFold(lastToken(value), []byte("chunked"))
		if !p.chunked {
			p.close = true
		}
	case bytes.EqualFold(name, []byte("Connection")):
		if containsToken(value, "close") {
			p.close = true
		}
	}
	return nil
}

// endHead decides how the body is framed (RFC 9112 section 6.3).
func (p *responseParser) endHead() error {
	switch {
	case p.status >= 100 && p.status < 200:
		if p.status == 101 {
			return fmt.Errorf("%w: protocol switch", ErrBadResponse)
		}
		// An interim response: the real one follows.
		*p = responseParser{head: p.head, length: -1, received: p.received}
		return nil
	case p.head || p.status == 204 || p.status == 304:
		p.state = stDone
	case p.chunked:
		p.state = stChunkSize
	case p.length >= 0:
		p.remaining = p.length
		p.state = stBody
		if p.length == 0 {
			p.state = stDone
		}
	default:
		p.state = stUntilEOF
		p.close = true
	}
	return nil
}

func (p *responseParser) chunkSize(line []byte) error {
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimSpace(line)
	if len(line) == 0 || len(line) > 15 {
		return fmt.Errorf("%w: chunk size %q", ErrBadResponse, truncate(string(line), 24))
	}
	var n int64
	for _, c := range line {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return fmt.Errorf("%w: chunk size %q", ErrBadResponse, truncate(string(line), 24))
		}
		n = n<<4 | int64(d)
	}
	if n == 0 {
		p.state = stTrailer
		return nil
	}
	p.remaining = n
	p.state = stChunkData
	return nil
}

// parseDecimal parses a non-negative decimal of at most 15 digits.
func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func lastToken(v []byte) []byte {
	if i := bytes.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return bytes.TrimSpace(v)
}

func containsToken(v []byte, token string) bool {
	for len(v) > 0 {
		var t []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			t, v = v[:i], v[i+1:]
		} else {
			t, v = v, nil
		}
		if bytes.EqualFold(bytes.TrimSpace(t), []byte(token)) {
			return true
		}
	}
	return false
}
