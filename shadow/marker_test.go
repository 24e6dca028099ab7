package shadow

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestMarker(t *testing.T) {
	long := strings.Repeat("a", RunBytesMax+1)
	tests := []struct {
		name    string
		header  []string
		baggage []string
		want    string
		wantErr error
	}{
		{name: "production", want: ""},
		{name: "header", header: []string{"run-1"}, want: "run-1"},
		{name: "header padded", header: []string{"  run-1 "}, want: "run-1"},
		{name: "header repeated same", header: []string{"run-1", "run-1"}, want: "run-1"},
		{name: "baggage", baggage: []string{"redline.run=run-1"}, want: "run-1"},
		{name: "baggage with others and properties", baggage: []string{"userId=alice;p1, redline.run = run-1 ;ttl=3;flag", "k=v"}, want: "run-1"},
		{name: "baggage percent-encoded", baggage: []string{"redline.run=run%2D1"}, want: "run-1"},
		{name: "baggage without marker", baggage: []string{"a=b,c=%20d"}, want: ""},
		{name: "both agree", header: []string{"run-1"}, baggage: []string{"redline.run=run-1"}, want: "run-1"},
		{name: "run id with every allowed byte", header: []string{"20261127T002557Z-0001_x.y:z"}, want: "20261127T002557Z-0001_x.y:z"},

		{name: "empty header", header: []string{""}, wantErr: ErrMalformed},
		{name: "header with a space inside", header: []string{"run 1"}, wantErr: ErrMalformed},
		{name: "header with a comma", header: []string{"run-1,run-2"}, wantErr: ErrMalformed},
		{name: "header too long", header: []string{long}, wantErr: ErrMalformed},
		{name: "header non-ascii", header: []string{"rün"}, wantErr: ErrMalformed},
		{name: "header repeated different", header: []string{"run-1", "run-2"}, wantErr: ErrInconsistent},
		{name: "header and baggage disagree", header: []string{"run-1"}, baggage: []string{"redline.run=run-2"}, wantErr: ErrInconsistent},
		{name: "baggage repeated different", baggage: []string{"redline.run=run-1", "redline.run=run-2"}, wantErr: ErrInconsistent},
		{name: "baggage empty value", baggage: []string{"redline.run="}, wantErr: ErrMalformed},
		{name: "baggage value decodes to a bad byte", baggage: []string{"redline.run=run%201"}, wantErr: ErrMalformed},
		{name: "baggage bad percent-encoding", baggage: []string{"redline.run=run%zz"}, wantErr: ErrMalformed},
		{name: "baggage member without =", baggage: []string{"redline.run"}, wantErr: ErrMalformed},
		{name: "baggage empty member", baggage: []string{"a=b,,c=d"}, wantErr: ErrMalformed},
		{name: "baggage bad key", baggage: []string{"a b=c"}, wantErr: ErrMalformed},
		{name: "baggage quote in value", baggage: []string{`a="b"`}, wantErr: ErrMalformed},
		{name: "baggage bad property", baggage: []string{"redline.run=run-1;=x"}, wantErr: ErrMalformed},
		{name: "baggage too long", baggage: []string{"a=" + strings.Repeat("b", BaggageBytesMax)}, wantErr: ErrMalformed},
		{name: "baggage too many members", baggage: []string{strings.Repeat("a=b,", BaggageMembersMax) + "a=b"}, wantErr: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tt.header {
				h.Add(Header, v)
			}
			for _, v := range tt.baggage {
				h.Add(BaggageHeader, v)
			}
			got, err := Marker(h)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Marker() error = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("Marker() = %q, want %q", got, tt.want)
			}
		})
	}
}

// FuzzMarker: any header pair either yields a valid run id (or none) or a classified error;
// never a panic, never an unclassified error.
func FuzzMarker(f *testing.F) {
	f.Add("run-1", "redline.run=run-1;p=1,a=b")
	f.Add("", "redline.run=run%2D1")
	f.Add("x", "a=,b")
	f.Fuzz(func(t *testing.T, header, baggage string) {
		h := http.Header{}
		if header != "" {
			h.Set(Header, header)
		}
		if baggage != "" {
			h.Set(BaggageHeader, baggage)
		}
		run, err := Marker(h)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrInconsistent) {
				t.Fatalf("unclassified error %v", err)
			}
			if run != "" {
				t.Fatalf("run %q beside error %v", run, err)
			}
			return
		}
		if run != "" {
			if verr := ValidRun(run); verr != nil {
				t.Fatalf("returned run %q is invalid: %v", run, verr)
			}
		}
	})
}
