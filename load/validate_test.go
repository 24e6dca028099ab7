package load

import (
	"errors"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// validConfig is a config that passes Validate; rows change one thing each.
func validConfig() Config {
	return Config{
		Phase:   "peak",
		Profile: Constant(100, time.Second),
		Requests: []Request{{
			Name: "pay", Weight: 1, Method: "POST", URL: "http://127.0.0.1:8080/pay/{{uid}}?to={{uid2}}",
			Header: http.Header{"Idempotency-Key": {"{{uuid}}"}, "X-Redline-Run": {"{{run}}"}},
			Body:   `{"amount":{{amount}},"seq":{{seq}}}`, ExpectStatus: []int{200, 201},
		}},
		Vars:    Vars{UIDMin: 1, UIDMax: 100, AmountMinorMin: 1, AmountMinorMax: 1000, RunID: "run-1"},
		Workers: 10,
		Timeout: time.Second,
	}
}

func TestValidate(t *testing.T) {
	type problem struct {
		Field string
		Err   error
	}
	tests := []struct {
		name   string
		change func(c *Config)
		want   []problem
	}{
		{"valid", func(c *Config) {}, nil},
		{"defaults for timeout and grace", func(c *Config) { c.Timeout, c.GracePeriod = 0, 0 }, nil},
		{"segment", func(c *Config) { c.Segment = Segment{1, 2, 3} }, nil},
		{"negative rate", func(c *Config) { c.Profile = Constant(-1, time.Second) },
			[]problem{{"Profile.StartRPS", ErrBadProfile}, {"Profile.Stages[0].TargetRPS", ErrBadProfile}}},
		{"NaN rate", func(c *Config) { c.Profile.Stages[0].TargetRPS = math.NaN() },
			[]problem{{"Profile.Stages[0].TargetRPS", ErrBadProfile}}},
		{"rate over the limit", func(c *Config) { c.Profile.StartRPS = RateRPSMax + 1 },
			[]problem{{"Profile.StartRPS", ErrBadProfile}}},
		{"zero duration", func(c *Config) { c.Profile = Constant(10, 0) }, []problem{{"Profile", ErrBadProfile}}},
		{"no stages", func(c *Config) { c.Profile.Stages = nil }, []problem{{"Profile.Stages", ErrBadProfile}}},
		{"negative stage", func(c *Config) {
			c.Profile.Stages = append(c.Profile.Stages, Stage{TargetRPS: 1, Duration: -time.Second})
		},
			[]problem{{"Profile.Stages[1].Duration", ErrBadProfile}}},
		{"too long", func(c *Config) { c.Profile = Constant(1, ProfileDurationMax+time.Second) },
			[]problem{{"Profile.Stages[0].Duration", ErrBadProfile}, {"Profile", ErrBadProfile}}},
		{"no requests", func(c *Config) { c.Requests = nil }, []problem{{"Requests", ErrBadRequest}}},
		{"weight zero", func(c *Config) { c.Requests[0].Weight = 0 }, []problem{{"Requests[0].Weight", ErrBadRequest}}},
		{"no name", func(c *Config) { c.Requests[0].Name = "" }, []problem{{"Requests[0].Name", ErrBadRequest}}},
		{"duplicate name", func(c *Config) { c.Requests = append(c.Requests, c.Requests[0]) },
			[]problem{{"Requests[1].Name", ErrBadRequest}}},
		{"lower-case method", func(c *Config) { c.Requests[0].Method = "post" }, []problem{{"Requests[0].Method", ErrBadRequest}}},
		{"method with a space", func(c *Config) { c.Requests[0].Method = "GET /" }, []problem{{"Requests[0].Method", ErrBadRequest}}},
		{"relative URL", func(c *Config) { c.Requests[0].URL = "/pay" }, []problem{{"Requests[0].URL", ErrBadRequest}}},
		{"other scheme", func(c *Config) { c.Requests[0].URL = "ftp://127.0.0.1/" }, []problem{{"Requests[0].URL", ErrBadRequest}}},
		{"host from a variable", func(c *Config) { c.Requests[0].URL = "http://{{run}}.example/" }, []problem{{"Requests[0].URL", ErrBadRequest}}},
		{"URL with a fragment", func(c *Config) { c.Requests[0].URL = "http://127.0.0.1/a#b" }, []problem{{"Requests[0].URL", ErrBadRequest}}},
		{"unknown variable in the URL", func(c *Config) { c.Requests[0].URL = "http://127.0.0.1/{{user}}" },
			[]problem{{"Requests[0].URL", ErrBadTemplate}}},
		{"unknown variable in the body", func(c *Config) { c.Requests[0].Body = "{{amount}} {{amout}}" },
			[]problem{{"Requests[0].Body", ErrBadTemplate}}},
		{"unclosed variable in a header", func(c *Config) { c.Requests[0].Header.Set("X-A", "{{uid") },
			[]problem{{"Requests[0].Header[X-A]", ErrBadTemplate}}},
		{"bad header name", func(c *Config) { c.Requests[0].Header["Bad Name"] = []string{"x"} },
			[]problem{{"Requests[0].Header[Bad Name]", ErrBadRequest}}},
		{"header with two values", func(c *Config) { c.Requests[0].Header.Add("X-Redline-Run", "again") },
			[]problem{{"Requests[0].Header[X-Redline-Run]", ErrBadRequest}}},
		{"header value with a line break", func(c *Config) { c.Requests[0].Header.Set("X-A", "a\r\nB: c") },
			[]problem{{"Requests[0].Header[X-A]", ErrBadRequest}}},
		{"body too large", func(c *Config) { c.Requests[0].Body = string(make([]byte, BodyBytesMax+1)) },
			[]problem{{"Requests[0].Body", ErrBadTemplate}}},
		{"bad status", func(c *Config) { c.Requests[0].ExpectStatus = []int{200, 99} },
			[]problem{{"Requests[0].ExpectStatus[1]", ErrBadRequest}}},
		{"uid bounds reversed", func(c *Config) { c.Vars.UIDMin, c.Vars.UIDMax = 5, 4 }, []problem{{"Vars.UIDMin", ErrBadVars}}},
		{"one uid for uid2", func(c *Config) { c.Vars.UIDMin, c.Vars.UIDMax = 5, 5 }, []problem{{"Vars.UIDMax", ErrBadVars}}},
		{"unused vars are not checked", func(c *Config) {
			c.Requests = []Request{{Name: "get", Weight: 1, Method: "GET", URL: "http://127.0.0.1/"}}
			c.Vars = Vars{UIDMin: 5, UIDMax: 4, AmountMinorMin: 9, AmountMinorMax: 1}
		}, nil},
		{"negative amount", func(c *Config) { c.Vars.AmountMinorMin = -1 }, []problem{{"Vars.AmountMinorMin", ErrBadVars}}},
		{"no run id", func(c *Config) { c.Vars.RunID = "" }, []problem{{"Vars.RunID", ErrBadVars}}},
		{"run id with a space", func(c *Config) { c.Vars.RunID = "a b" }, []problem{{"Vars.RunID", ErrBadVars}}},
		{"no workers", func(c *Config) { c.Workers = 0 }, []problem{{"Workers", ErrBadLimit}}},
		{"too many workers", func(c *Config) { c.Workers = WorkersMax + 1 }, []problem{{"Workers", ErrBadLimit}}},
		{"more connections than workers", func(c *Config) { c.Connections = 11 }, []problem{{"Connections", ErrBadLimit}}},
		{"negative timeout", func(c *Config) { c.Timeout = -1 }, []problem{{"Timeout", ErrBadLimit}}},
		{"grace too long", func(c *Config) { c.GracePeriod = GracePeriodMax + 1 }, []problem{{"GracePeriod", ErrBadLimit}}},
		{"segment reversed", func(c *Config) { c.Segment = Segment{2, 1, 3} }, []problem{{"Segment", ErrBadSegment}}},
		{"segment past one", func(c *Config) { c.Segment = Segment{0, 4, 3} }, []problem{{"Segment", ErrBadSegment}}},
		{"every problem at once", func(c *Config) {
			c.Profile = Constant(-1, 0)
			c.Requests[0].Weight = 0
			c.Requests[0].URL = "http://127.0.0.1/{{nope}}"
			c.Workers = 0
		}, []problem{
			{"Profile.StartRPS", ErrBadProfile}, {"Profile.Stages[0].TargetRPS", ErrBadProfile}, {"Profile", ErrBadProfile},
			{"Requests[0].Weight", ErrBadRequest}, {"Requests[0].URL", ErrBadTemplate}, {"Workers", ErrBadLimit},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.change(&c)
			var got []problem
			for _, err := range c.Validate() {
				var fe *FieldError
				if !errors.As(err, &fe) {
					t.Fatalf("%v is not a *FieldError", err)
				}
				p := problem{Field: fe.Field}
				for _, s := range []error{ErrBadProfile, ErrBadRequest, ErrBadTemplate, ErrBadVars, ErrBadLimit, ErrBadSegment} {
					if errors.Is(err, s) {
						p.Err = s
					}
				}
				got = append(got, p)
			}
			if diff := cmp.Diff(got, tt.want, cmp.Comparer(func(a, b error) bool { return a == b })); diff != "" {
				t.Errorf("Validate (-got +want):\n%s", diff)
			}
		})
	}
}

func TestNewGeneratorRejectsInvalidConfig(t *testing.T) {
	c := validConfig()
	c.Workers = 0
	_, err := NewGenerator(c, &fakeRecorder{})
	if !errors.Is(err, ErrInvalidConfig) || !errors.Is(err, ErrBadLimit) {
		t.Errorf("NewGenerator = %v, want ErrInvalidConfig and ErrBadLimit", err)
	}
	if _, err := NewGenerator(validConfig(), nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("NewGenerator with a nil recorder = %v, want ErrInvalidConfig", err)
	}
}
