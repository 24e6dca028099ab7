package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/redline-dev/redline/chaos"
	"github.com/redline-dev/redline/load"
	"github.com/redline-dev/redline/plan"
	"github.com/redline-dev/redline/run"
	"github.com/redline-dev/redline/target/sqldb"
)

// RunOptions are the inputs of `redline run`.
type RunOptions struct {
	IO          IO
	PlanPath    string
	OutDir      string
	TargetURL   string
	MetricsAddr string
	Segment     string
	DryRun      bool
	Quiet       bool
	DSN         string
}

// NewCmdRun returns `redline run PLAN.yaml`. runF replaces the behaviour in tests.
func NewCmdRun(streams IO, runF func(context.Context, *RunOptions) error) *cobra.Command {
	opts := &RunOptions{IO: streams}
	cmd := &cobra.Command{
		Use:   "run PLAN.yaml",
		Short: "Run a rehearsal plan and judge it (exit 0 pass, 3 failed, 4 aborted)",
		Long: `Run every phase of a plan, write report.json, summary.json, junit.xml and
timeline.jsonl into --out, and exit with the verdict: 0 pass, 1 run error, 2 invalid
input, 3 verification failed, 4 aborted (Ctrl-C, an abort condition).`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.PlanPath = args[0]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runRun(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.OutDir, "out", "", "run directory for the outputs (default runs/<timestamp>-<plan name>)")
	f.StringVar(&opts.TargetURL, "target-url", "", "send the plan's requests to this base URL instead of the plan's target")
	f.StringVar(&opts.MetricsAddr, "metrics-addr", "", "serve Prometheus /metrics on this address during the run")
	f.StringVar(&opts.Segment, "segment", "", "run this agent's share i/N of every phase's arrivals (0 <= i < N)")
	f.BoolVar(&opts.DryRun, "dry-run", false, "print the timeline and exit without sending anything")
	f.BoolVarP(&opts.Quiet, "quiet", "q", false, "no progress lines")
	f.StringVar(&opts.DSN, "dsn", "", "the built-in target's databases on this PostgreSQL server, a schema each (default: SQLite files in the run directory)")
	return cmd
}

func runRun(ctx context.Context, opts *RunOptions) error {
	seg, err := parseSegment(opts.Segment)
	if err != nil {
		return err
	}
	if opts.DSN != "" && opts.TargetURL != "" {
		return fmt.Errorf("%w: --dsn is for the built-in target, and --target-url %s points the plan elsewhere", ErrInvalid, opts.TargetURL)
	}
	source, err := readPlanFile(opts.PlanPath)
	if err != nil {
		return err
	}
	p, err := parsePlan(opts.IO, opts.PlanPath, source, plan.Options{TargetURL: opts.TargetURL})
	if err != nil {
		return err
	}
	if opts.DSN != "" {
		if p.Target().URL != "" || p.Target().Builtin == nil {
			return fmt.Errorf("%w: --dsn is for the built-in target (the plan's target is %s)", ErrInvalid, p.Target().URL)
		}
		if _, err := sqldb.ParseDSN(opts.DSN); err != nil {
			return fmt.Errorf("%w: --dsn: %w", ErrInvalid, err)
		}
	}
	if opts.DryRun {
		fmt.Fprint(opts.IO.Out, p.Summary())
		printSegmentShare(opts.IO.Out, p, seg)
		return nil
	}
	return executePlan(ctx, opts.IO, p, source, execOptions{
		OutDir: opts.OutDir, MetricsAddr: opts.MetricsAddr, Segment: seg, Quiet: opts.Quiet, DSN: opts.DSN,
	})
}

// printSegmentShare says, for one agent of several, how many of each phase's arrivals it sends.
func printSegmentShare(w io.Writer, p *plan.Plan, seg load.Segment) {
	if seg.Den == 0 {
		return
	}
	fmt.Fprintf(w, "\nthis agent (segment %s) sends:\n", seg)
	for _, ph := range p.Phases() {
		if ph.Load == nil {
			continue
		}
		owned, all, err := seg.ArrivalsOf(ph.Load.Profile)
		if err != nil {
			continue
		}
		fmt.Fprintf(w, "  %s: %d of its %d arrivals\n", ph.Name, owned, all)
	}
}

// execOptions are what `run` and `load` share once they have a plan.
type execOptions struct {
	OutDir      string
	MetricsAddr string
	Segment     load.Segment
	Quiet       bool
	DSN         string // the built-in target's PostgreSQL server; empty: SQLite
}

// executePlan runs a plan, writes every output, prints the verdict and returns the error that
// carries the exit code. A plan on the built-in target starts it in the run directory first,
// and audits and stops it after the last phase.
func executePlan(ctx context.Context, streams IO, p *plan.Plan, source []byte, eo execOptions) error {
	if err := checkExecOptions(eo); err != nil {
		return err
	}
	runID := newRunID(p.Name())
	dir := eo.OutDir
	if dir == "" {
		dir = filepath.Join("runs", runID)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create run directory: %w", err)
	}
	var target *builtinTarget
	if b := p.Target().Builtin; p.Target().URL == "" && b != nil {
		var err error
		if target, err = startBuiltin(ctx, streams, filepath.Join(dir, "target"), *b, eo.DSN, runID); err != nil {
			return err
		}
		defer target.stop()
		if p, err = p.WithTargetURL(target.routerURL); err != nil {
			return err
		}
	}
	ro := run.Options{
		RunID: runID, OutDir: dir, MetricsAddr: eo.MetricsAddr, Segment: eo.Segment, PlanSource: source,
		Started: func(addr string) {
			if addr != "" {
				fmt.Fprintf(streams.ErrOut, "metrics: http://%s/metrics\n", addr)
			}
		},
	}
	if !eo.Quiet {
		ro.Progress, ro.Terminal = streams.ErrOut, isTerminal(streams.ErrOut)
	}
	if target != nil {
		ro.Gauges = target.gauges
	}
	if target != nil { // its topology is what the plan's faults select from
		// Absolute: the chaos journal records it, and `redline chaos recover` may run elsewhere.
		token, err := filepath.Abs(filepath.Join(target.dataDir, "admin.token"))
		if err != nil {
			return fmt.Errorf("run plan %s: %w", p.Name(), err)
		}
		ro.TargetAdmin = &chaos.AdminRef{URL: target.adminURL, TokenFile: token}
	}
	fmt.Fprintf(streams.ErrOut, "run %s: plan %s against %s, %s, outputs in %s\n",
		runID, p.Name(), p.Target().URL, p.Duration(), dir)
	rec, err := run.Run(ctx, p, ro)
	if err != nil {
		return fmt.Errorf("run plan %s: %w", p.Name(), err)
	}
	if target != nil {
		if err := auditBuiltin(ctx, streams, target, dir, rec); err != nil {
			return err
		}
	}
	return judgeAndReport(streams, dir, p, rec)
}

// checkExecOptions refuses flags that could only fail once the run began: caught here, before
// anything is started or written, they are invalid input (exit 2).
func checkExecOptions(eo execOptions) error {
	if eo.OutDir != "" {
		if fi, err := os.Stat(eo.OutDir); err == nil && !fi.IsDir() {
			return fmt.Errorf("%w: --out %s: not a directory", ErrInvalid, eo.OutDir)
		}
	}
	if eo.MetricsAddr != "" {
		_, port, err := net.SplitHostPort(eo.MetricsAddr)
		if err != nil {
			return fmt.Errorf("%w: --metrics-addr %q: want host:port (127.0.0.1:9464): %w", ErrInvalid, eo.MetricsAddr, err)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			return fmt.Errorf("%w: --metrics-addr %q: port %q is not a number from 0 to 65535", ErrInvalid, eo.MetricsAddr, port)
		}
	}
	return nil
}

// auditBuiltin runs the built-in target's audit after the run and records it with the run.
func auditBuiltin(ctx context.Context, streams IO, t *builtinTarget, dir string, rec *run.Record) error {
	start := time.Now()
	a, err := t.audit(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(streams.ErrOut, "built-in target: audit %s in %v\n", a.Verdict, time.Since(start).Round(time.Millisecond))
	return run.AppendAudit(dir, rec, a)
}

// newRunID names a run by its start time and plan: sortable, readable, unique enough for one
// machine (seconds and a nanosecond suffix).
func newRunID(planName string) string {
	now := time.Now().UTC()
	return fmt.Sprintf("%s-%04d-%s", now.Format("20060102T150405Z"), now.Nanosecond()/100000, planName)
}

// parseSegment reads --segment i/N: agent i (0-based) of N.
func parseSegment(s string) (load.Segment, error) {
	if s == "" {
		return load.Segment{}, nil
	}
	is, ns, ok := strings.Cut(s, "/")
	i, err1 := strconv.ParseInt(is, 10, 64)
	n, err2 := strconv.ParseInt(ns, 10, 64)
	if !ok || err1 != nil || err2 != nil || n < 1 || n > segmentsMax || i < 0 || i >= n {
		return load.Segment{}, fmt.Errorf("%w: --segment %q: want i/N with 0 <= i < N <= %d", ErrInvalid, s, segmentsMax)
	}
	return load.Segment{FromNum: i, ToNum: i + 1, Den: n}, nil
}

// segmentsMax bounds the agents a plan is split across.
const segmentsMax = 1000

// readPlanFile reads a plan file; a missing, unreadable or oversized file is invalid input.
func readPlanFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: read plan: %w", ErrInvalid, err)
	}
	defer f.Close()
	if info, err := f.Stat(); err == nil && info.IsDir() {
		return nil, fmt.Errorf("%w: read plan: %s is a directory", ErrInvalid, path)
	}
	// One byte over the limit is enough for plan.Parse to refuse the file with its message.
	data, err := io.ReadAll(io.LimitReader(f, plan.FileBytesMax+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read plan: %w", ErrInvalid, err)
	}
	return data, nil
}

// parsePlan compiles a plan, printing every problem as file:line:col: path: message.
func parsePlan(streams IO, name string, source []byte, po plan.Options) (*plan.Plan, error) {
	p, err := plan.Parse(name, source, po)
	if err != nil {
		return nil, planError(streams, name, err)
	}
	return p, nil
}

// planError prints a plan's problems, one a line, and returns err with its exit code.
func planError(streams IO, name string, err error) error {
	var perr *plan.Error
	switch {
	case errors.As(err, &perr):
		for _, pr := range perr.Problems {
			fmt.Fprintln(streams.ErrOut, pr.String())
		}
		return silent(fmt.Errorf("%w: %d problems in %s", ErrInvalid, len(perr.Problems), name))
	case errors.Is(err, plan.ErrInvalid):
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return err
}

// groupArgs and groupRun make a command that only groups others runnable, so that cobra
// does not answer an unknown verb with the group's help and exit 0: with no argument the
// group prints its help; a word that is none of its commands is invalid input (exit 2), with
// cobra's suggestions.
var groupArgs = cobra.ArbitraryArgs

func groupRun(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(s, ", "))
	}
	return fmt.Errorf("%w: %s; run '%s --help' for its commands", ErrInvalid, msg, cmd.CommandPath())
}

// exactArgs is cobra.ExactArgs whose error is invalid input (exit 2).
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		return nil
	}
}
