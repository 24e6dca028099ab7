package cli

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/redline-dev/redline/scenarios"
)

// fiveMistakes is a plan with five independent mistakes, one a line.
const fiveMistakes = `apiVersion: redline/v1
kind: Rehearsal
metadata: {name: five}
target: {url: "http://127.0.0.1:8080"}
peak: {rate: 200/s}
sla:
  http_req_duraton: ["p(99)<100"]
  http_req_failed: ["p(99)<0.01"]
defaults:
  requests:
    - {name: home, path: /}
phases:
  - {name: warmup, load: {rate: 30%, duration: 30}, judge: false}
  - {name: peak, load: {rate: 1100%, duration: 60s}}
  - {name: peak, load: {rate: 100%, duration: 60s}}
`

func writePlan(t *testing.T, name, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func execute(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = Execute(context.Background(), IO{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, args)
	return code, out.String(), errOut.String()
}

func TestValidateFiveMistakes(t *testing.T) {
	path := writePlan(t, "five.yaml", fiveMistakes)
	code, stdout, stderr := execute("validate", path)
	if code != ExitInvalid {
		t.Errorf("exit code %d, want %d", code, ExitInvalid)
	}
	want := []string{
		path + `:7:3: sla.http_req_duraton: unknown metric "http_req_duraton" (did you mean http_req_duration?)`,
		path + `:8:21: sla.http_req_failed[0]: aggregation not allowed: p(99) on http_req_failed, a rate metric (want rate)`,
		path + `:13:48: phases[0].load.duration: want a duration with a unit, like 30s or 2m, got the number 30`,
		path + `:14:31: phases[1].load.rate: 1100% is over the limit of 1000% of peak.rate`,
		path + `:15:12: phases[2].name: duplicate phase name "peak" (first at phases[1])`,
	}
	if diff := cmp.Diff(want, strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")); diff != "" {
		t.Errorf("stderr (-want +got):\n%s", diff)
	}
	if stdout != "" {
		t.Errorf("stdout = %q, want nothing", stdout)
	}
}

func TestValidate(t *testing.T) {
	smoke, err := fs.ReadFile(scenarios.FS, "smoke.yaml")
	if err != nil {
		t.Fatal(err)
	}
	good := writePlan(t, "smoke.yaml", string(smoke))
	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     string // a substring
		stderr     string // a substring; "" wants nothing
		stderrNone bool
	}{
		{name: "valid plan prints its timeline", args: []string{"validate", good}, code: ExitPass,
			stdout: "PHASE   START  DURATION", stderrNone: true},
		{name: "target url flag", args: []string{"validate", "--target-url", "https://example.test", good}, code: ExitPass,
			stdout: "target  https://example.test\n", stderrNone: true},
		{name: "bad target url flag", args: []string{"validate", "--target-url", "example.test", good}, code: ExitInvalid,
			stderr: good + `: --target-url: want an http:// or https:// URL, got "example.test"` + "\n"},
		{name: "missing file", args: []string{"validate", filepath.Join(t.TempDir(), "nope.yaml")}, code: ExitInvalid,
			stderr: "redline: invalid input: read plan: open "},
		{name: "directory", args: []string{"validate", t.TempDir()}, code: ExitInvalid,
			stderr: "is a directory"},
		{name: "no argument", args: []string{"validate"}, code: ExitInvalid, stderr: "accepts 1 arg(s), received 0"},
		{name: "unknown flag", args: []string{"validate", "--nope", good}, code: ExitInvalid, stderr: "unknown flag: --nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := execute(tt.args...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tt.code, stderr)
			}
			if !strings.Contains(stdout, tt.stdout) {
				t.Errorf("stdout %q does not contain %q", stdout, tt.stdout)
			}
			if tt.stderrNone && stderr != "" || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr %q, want %q", stderr, tt.stderr)
			}
		})
	}
}

func TestValidateFlags(t *testing.T) {
	var got *ValidateOptions
	cmd := newCmdValidate(IO{}, func(o *ValidateOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"--target-url", "http://h:1", "p.yaml"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.PlanPath != "p.yaml" || got.TargetURL != "http://h:1" {
		t.Errorf("options = %+v", got)
	}
}
