package cli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/redline-dev/redline/plan"
)

// LoadOptions are the inputs of `redline load`: an ad-hoc, one-phase plan.
type LoadOptions struct {
	IO          IO
	URL         string
	Rate        string
	Duration    time.Duration
	Method      string
	Headers     []string
	Body        string
	Workers     int
	Timeout     time.Duration
	Thresholds  []string
	OutDir      string
	MetricsAddr string
	Segment     string
	Quiet       bool
	Marker      string // the plan's target.marker: header, baggage or off
}

// NewCmdLoad returns `redline load --url URL --rate R --duration D`.
func NewCmdLoad(streams IO, runF func(context.Context, *LoadOptions) error) *cobra.Command {
	opts := &LoadOptions{IO: streams}
	cmd := &cobra.Command{
		Use:   "load --url URL --rate R --duration D",
		Short: "Ad-hoc open-model load against any HTTP endpoint",
		Long: `Send open-model load (arrivals per second, whatever the server does) to one URL and
judge it like a one-phase plan: --threshold 'http_req_duration=p(99)<100' adds a criterion.
The URL may use the template variables {{uid}}, {{uid2}}, {{uuid}}, {{seq}}, {{amount}}.`,
		Example: `  redline load --url http://127.0.0.1:8080/ --rate 2000 --duration 30s \
    --threshold 'http_req_duration=p(99)<50' --threshold 'http_req_failed=rate<0.001'`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return loadRun(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.URL, "url", "", "the URL to load (required)")
	f.StringVar(&opts.Rate, "rate", "", "arrivals per second, or with a unit: 2000/s, 120/m (required)")
	f.DurationVar(&opts.Duration, "duration", 0, "how long to send (required)")
	f.StringVarP(&opts.Method, "method", "X", "GET", "HTTP method")
	f.StringArrayVarP(&opts.Headers, "header", "H", nil, "a request header 'Name: value' (repeatable)")
	f.StringVar(&opts.Body, "body", "", "request body (a template)")
	f.IntVar(&opts.Workers, "workers", 0, "bound on in-flight requests (default: the plan default)")
	f.DurationVar(&opts.Timeout, "timeout", 0, "per-request timeout (default: the plan default)")
	f.StringArrayVar(&opts.Thresholds, "threshold", nil, "a criterion 'metric=expression', k6 grammar (repeatable)")
	f.StringVar(&opts.OutDir, "out", "", "run directory for the outputs (default runs/<timestamp>-load)")
	f.StringVar(&opts.MetricsAddr, "metrics-addr", "", "serve Prometheus /metrics on this address during the run")
	f.StringVar(&opts.Segment, "segment", "", "send this agent's share i/N of the arrivals")
	f.BoolVarP(&opts.Quiet, "quiet", "q", false, "no progress lines")
	f.StringVar(&opts.Marker, "marker", "header", "how requests carry the stress marker (the run id): header (X-Redline-Run), baggage (redline.run) or off")
	return cmd
}

func loadRun(ctx context.Context, opts *LoadOptions) error {
	seg, err := parseSegment(opts.Segment)
	if err != nil {
		return err
	}
	source, err := opts.planYAML()
	if err != nil {
		return err
	}
	p, err := plan.Parse(loadPlanName, source, plan.Options{})
	if err != nil {
		return planError(opts.IO, loadPlanName, flagProblems(err))
	}
	return executePlan(ctx, opts.IO, p, source, execOptions{
		OutDir: opts.OutDir, MetricsAddr: opts.MetricsAddr, Segment: seg, Quiet: opts.Quiet,
	})
}

// loadPlanName names the ad-hoc plan in its problems.
const loadPlanName = "redline load"

// loadFlags are the places of the ad-hoc plan (planYAML) and the flags that fill them, the
// more precise place first.
var loadFlags = []struct{ path, flag string }{
	{"phases[0].load.rate", "--rate"},
	{"phases[0].load.duration", "--duration"},
	{"defaults.requests[0].headers", "--header"},
	{"defaults.requests[0].body", "--body"},
	{"defaults.requests[0].method", "--method"},
	{"defaults.requests[0].path", "--url"},
	{"defaults.workers", "--workers"},
	{"defaults.timeout", "--timeout"},
	{"target.marker", "--marker"},
	{"target.url", "--url"},
	{"sla", "--threshold"},
}

// flagProblems locates the problems of the ad-hoc plan at the flags that made them: the plan
// file is the command's own, and its lines and columns say nothing to the person who typed
// the flags.
func flagProblems(err error) error {
	var perr *plan.Error
	if !errors.As(err, &perr) {
		return err
	}
	for i, p := range perr.Problems {
		for _, f := range loadFlags {
			if p.Path == f.path || strings.HasPrefix(p.Path, f.path+".") || strings.HasPrefix(p.Path, f.path+"[") {
				perr.Problems[i] = plan.Problem{File: p.File, Path: f.flag, Message: p.Message}
				break
			}
		}
	}
	return err
}

// planYAML writes the flags as a plan file, so that ad-hoc load is validated, run, judged and
// echoed exactly like a plan (and `redline verify` can judge it again).
func (o *LoadOptions) planYAML() ([]byte, error) {
	var missing []string
	for flag, empty := range map[string]bool{"--url": o.URL == "", "--rate": o.Rate == "", "--duration": o.Duration == 0} {
		if empty {
			missing = append(missing, flag)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, fmt.Errorf("%w: required flags missing: %s", ErrInvalid, strings.Join(missing, ", "))
	}
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: --url %q: want an absolute http:// or https:// URL", ErrInvalid, o.URL)
	}
	rate := o.Rate
	if strings.HasSuffix(strings.TrimSpace(rate), "%") {
		return nil, fmt.Errorf("%w: --rate %s: redline load has no peak for a share to be of; give requests per second (200, 200/s, 12000/m)", ErrInvalid, rate)
	}
	if _, err := strconv.ParseFloat(rate, 64); err == nil {
		rate += "/s"
	}
	req := map[string]any{"name": "load", "method": o.Method, "path": pathOf(o.URL)}
	if len(o.Headers) > 0 {
		h := map[string]string{}
		for _, line := range o.Headers {
			name, value, ok := strings.Cut(line, ":")
			if !ok || strings.TrimSpace(name) == "" {
				return nil, fmt.Errorf("%w: --header %q: want 'Name: value'", ErrInvalid, line)
			}
			h[strings.TrimSpace(name)] = strings.TrimSpace(value)
		}
		req["headers"] = h
	}
	if o.Body != "" {
		req["body"] = o.Body
	}
	defaults := map[string]any{"requests": []any{req}}
	if o.Workers != 0 {
		defaults["workers"] = o.Workers
	}
	if o.Timeout != 0 {
		defaults["timeout"] = o.Timeout.String()
	}
	target := map[string]any{"url": u.Scheme + "://" + u.Host}
	if o.Marker != "" {
		target["marker"] = o.Marker
	}
	doc := map[string]any{
		"apiVersion": "redline/v1",
		"kind":       "Rehearsal",
		"metadata":   map[string]any{"name": "load"},
		"target":     target,
		"defaults":   defaults,
		"phases": []any{map[string]any{
			"name": "load",
			"load": map[string]any{"rate": rate, "duration": o.Duration.String()},
		}},
	}
	if len(o.Thresholds) > 0 {
		sla := map[string][]string{}
		for _, t := range o.Thresholds {
			key, expr, ok := strings.Cut(t, "=")
			if !ok || strings.TrimSpace(key) == "" || strings.TrimSpace(expr) == "" {
				return nil, fmt.Errorf("%w: --threshold %q: want 'metric=expression', e.g. 'http_req_duration=p(99)<100'", ErrInvalid, t)
			}
			key = strings.TrimSpace(key)
			sla[key] = append(sla[key], strings.TrimSpace(expr))
		}
		doc["sla"] = sla
	}
	data, err := yaml.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("write ad-hoc plan: %w", err)
	}
	return data, nil
}

// pathOf is the path and query of an absolute URL as the user wrote them: a plan's request
// carries them, and their template variables ({{uid}}) must reach it unescaped.
func pathOf(raw string) string {
	_, rest, _ := strings.Cut(raw, "://")
	p := ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		p = rest[i:] // past the authority
	}
	p, _, _ = strings.Cut(p, "#")
	if p == "" || p[0] == '?' {
		p = "/" + p
	}
	return p
}
