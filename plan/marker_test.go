package plan_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/redline-dev/redline/load"
	"github.com/redline-dev/redline/plan"
)

func TestMarkerCompiles(t *testing.T) {
	for _, tt := range []struct {
		target string
		want   plan.Marker
	}{
		{`target: {url: "http://127.0.0.1:8080"}`, plan.MarkerHeader},
		{`target: {url: "http://127.0.0.1:8080", marker: header}`, plan.MarkerHeader},
		{`target: {url: "http://127.0.0.1:8080", marker: baggage}`, plan.MarkerBaggage},
		{`target: {url: "http://127.0.0.1:8080", marker: "off"}`, plan.MarkerOff},
	} {
		p, err := plan.Parse("p.yaml", []byte(mutate(t, `target: {url: "http://127.0.0.1:8080"}`, tt.target)), plan.Options{})
		if err != nil {
			t.Fatalf("%s: %v", tt.target, err)
		}
		if got := p.Target().Marker; got != tt.want {
			t.Errorf("%s: marker %q, want %q", tt.target, got, tt.want)
		}
	}
}

func TestMarkerRefused(t *testing.T) {
	for _, tt := range []struct{ name, old, new, want string }{
		{"unknown marker", `target: {url: "http://127.0.0.1:8080"}`, `target: {url: "http://127.0.0.1:8080", marker: cookie}`,
			`target.marker: marker "cookie": want header, baggage or off`},
		{"the plan sets the header", `- {name: get, path: /}`, `- {name: get, path: /, headers: {x-redline-run: mine}}`,
			`headers: sets X-Redline-Run, which target.marker sets: use target.marker: off to set it yourself`},
		{"the plan sets the baggage member", `- {name: get, path: /}`, `- {name: get, path: /, headers: {baggage: "a=b,redline.run=mine"}}`,
			`headers: sets baggage redline.run, which target.marker sets`},
	} {
		got := strings.Join(problems(t, mutate(t, tt.old, tt.new), plan.Options{}), "\n")
		if !strings.Contains(got, tt.want) {
			t.Errorf("%s: problems %q, want one with %q", tt.name, got, tt.want)
		}
	}
	// With marker: off the plan may mark its requests itself.
	off := mutate(t, "target: {url: \"http://127.0.0.1:8080\"}\npeak: {rate: 100/s}\nsla:\n  http_req_duration: [\"p(99)<100\"]\n  http_req_failed: [\"rate<0.01\"]\ndefaults:\n  requests:\n    - {name: get, path: /}",
		"target: {url: \"http://127.0.0.1:8080\", marker: \"off\"}\npeak: {rate: 100/s}\nsla:\n  http_req_duration: [\"p(99)<100\"]\n  http_req_failed: [\"rate<0.01\"]\ndefaults:\n  requests:\n    - {name: get, path: /, headers: {X-Redline-Run: mine}}")
	if got := problems(t, off, plan.Options{}); got != nil {
		t.Errorf("marker off with the plan's own header: %v", got)
	}
}

func TestMarkerMark(t *testing.T) {
	reqs := []load.Request{
		{Name: "a", Header: http.Header{"Baggage": {"k=v"}}},
		{Name: "b"},
	}
	tests := []struct {
		m    plan.Marker
		want []http.Header
	}{
		{plan.MarkerHeader, []http.Header{{"Baggage": {"k=v"}, "X-Redline-Run": {"run-1"}}, {"X-Redline-Run": {"run-1"}}}},
		{plan.MarkerBaggage, []http.Header{{"Baggage": {"k=v,redline.run=run-1"}}, {"Baggage": {"redline.run=run-1"}}}},
		{plan.MarkerOff, []http.Header{{"Baggage": {"k=v"}}, nil}},
	}
	for _, tt := range tests {
		got := tt.m.Mark(reqs, "run-1")
		for i := range got {
			if diff := cmp.Diff(got[i].Header, tt.want[i]); diff != "" {
				t.Errorf("%s request %d (-got +want):\n%s", tt.m, i, diff)
			}
		}
	}
	if diff := cmp.Diff(reqs[0].Header, http.Header{"Baggage": {"k=v"}}); diff != "" {
		t.Errorf("Mark changed its input (-got +want):\n%s", diff)
	}
}
