package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/redline-dev/redline/chaos"
	"github.com/redline-dev/redline/chaos/mesh"
	"github.com/redline-dev/redline/plan"
)

// NewCmdChaos returns `redline chaos` and its verbs: export and recover.
func NewCmdChaos(streams IO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "chaos",
		Short: "Export a plan's faults to Chaos Mesh, or recover what a crashed run left injected",
		Args:  groupArgs,
		RunE:  groupRun,
	}
	cmd.AddCommand(NewCmdChaosExport(streams, nil), NewCmdChaosRecover(streams, nil))
	return cmd
}

// ChaosExportOptions are the inputs of `redline chaos export`.
type ChaosExportOptions struct {
	IO         IO
	PlanPath   string
	Flat       bool
	LabelMap   string
	Namespace  string
	Out        string
	Apply      bool
	Kubeconfig string
	// NewClient connects to the cluster; tests give a fake client.
	NewClient func(kubeconfig string) (client.Client, error)
}

// NewCmdChaosExport returns `redline chaos export PLAN.yaml`.
func NewCmdChaosExport(streams IO, runF func(context.Context, *ChaosExportOptions) error) *cobra.Command {
	opts := &ChaosExportOptions{IO: streams, NewClient: mesh.NewClient}
	cmd := &cobra.Command{
		Use:   "export PLAN.yaml",
		Short: "Write the plan's faults as Chaos Mesh resources (YAML), validated by Chaos Mesh's rules",
		Long: `Write the plan's faults as Chaos Mesh resources: one Workflow that runs each fault at its
time in the plan (a Suspend until then, the chaos for its duration), or with --flat one
object per fault. Each is defaulted and validated with Chaos Mesh's own webhooks before it
is written. ConsumerChaos has no Chaos Mesh kind and is skipped with a note.

--label-map renames selector keys for the cluster: unit=app.kubernetes.io/instance,role=tier.
--apply creates the resources through the Kubernetes API of --kubeconfig.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.PlanPath = args[0]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return chaosExportRun(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.Flat, "flat", false, "one object per fault instead of one Workflow")
	f.StringVar(&opts.LabelMap, "label-map", "", "rename selector keys: redline=cluster,... (unit=app.kubernetes.io/instance)")
	f.StringVar(&opts.Namespace, "namespace", "default", "namespace of the resources and of what they select")
	f.StringVar(&opts.Out, "out", "", "write the YAML to this file instead of standard output")
	f.BoolVar(&opts.Apply, "apply", false, "create the resources in the cluster of --kubeconfig")
	f.StringVar(&opts.Kubeconfig, "kubeconfig", "", "kubeconfig file for --apply")
	return cmd
}

// labelMapEntriesMax bounds --label-map.
const labelMapEntriesMax = 64

// parseLabelMap reads k=v,k=v: each entry one '=', no key twice; mesh.CheckLabelMap then
// checks the keys as Kubernetes reads them.
func parseLabelMap(s string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: --label-map %q: %s", ErrInvalid, s, fmt.Sprintf(format, args...))
	}
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case len(out) >= labelMapEntriesMax:
			return nil, bad("more than %d entries", labelMapEntriesMax)
		case strings.Count(kv, "=") != 1 || k == "" || v == "":
			return nil, bad("entry %q: want redline-key=cluster-key, like unit=app.kubernetes.io/instance", kv)
		}
		if prev, dup := out[k]; dup {
			return nil, bad("%s is mapped twice, to %s and to %s", k, prev, v)
		}
		out[k] = v
	}
	if err := mesh.CheckLabelMap(out); err != nil {
		return nil, fmt.Errorf("%w: --label-map %q: %w", ErrInvalid, s, err)
	}
	return out, nil
}

func chaosExportRun(ctx context.Context, opts *ChaosExportOptions) error {
	if opts.Apply && opts.Kubeconfig == "" {
		return fmt.Errorf("%w: --apply needs --kubeconfig", ErrInvalid)
	}
	if err := mesh.CheckNamespace(opts.Namespace); err != nil {
		return fmt.Errorf("%w: --namespace: %w", ErrInvalid, err)
	}
	labels, err := parseLabelMap(opts.LabelMap)
	if err != nil {
		return err
	}
	source, err := readPlanFile(opts.PlanPath)
	if err != nil {
		return err
	}
	p, err := parsePlan(opts.IO, opts.PlanPath, source, plan.Options{})
	if err != nil {
		return err
	}
	ex, err := mesh.Build(p.Faults(), mesh.ExportOptions{Plan: p.Name(), Namespace: opts.Namespace, LabelMap: labels,
		Flat: opts.Flat, PhaseStart: p.PhaseStarts()})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	var c client.Client
	if opts.Apply { // before anything is written: a damaged kubeconfig is invalid input
		c, err = opts.NewClient(opts.Kubeconfig)
		switch {
		case errors.Is(err, mesh.ErrKubeconfig):
			return fmt.Errorf("%w: --kubeconfig: %w", ErrInvalid, err)
		case err != nil:
			return err
		}
	}
	for _, s := range ex.Skipped {
		fmt.Fprintf(opts.IO.ErrOut, "skipped %s\n", s)
	}
	if len(ex.Objects) == 0 {
		return fmt.Errorf("%w: plan %s has no fault that Chaos Mesh can run", ErrInvalid, opts.PlanPath)
	}
	y, err := ex.YAML()
	if err != nil {
		return err
	}
	if opts.Out != "" {
		if err := os.WriteFile(opts.Out, y, 0o644); err != nil {
			return fmt.Errorf("write export: %w", err)
		}
	} else if _, err := opts.IO.Out.Write(y); err != nil {
		return fmt.Errorf("write export: %w", err)
	}
	if !opts.Apply {
		return nil
	}
	if err := ex.Apply(ctx, c); err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.ErrOut, "created %d resources in namespace %s\n", len(ex.Objects), opts.Namespace)
	return nil
}

// ChaosRecoverOptions are the inputs of `redline chaos recover`.
type ChaosRecoverOptions struct {
	IO      IO
	DataDir string
}

// NewCmdChaosRecover returns `redline chaos recover [--data DIR]`.
func NewCmdChaosRecover(streams IO, runF func(context.Context, *ChaosRecoverOptions) error) *cobra.Command {
	opts := &ChaosRecoverOptions{IO: streams}
	cmd := &cobra.Command{
		Use:   "recover [--data RUNDIR]",
		Short: "Recover every fault a crashed or killed run left injected",
		Long: `Read the chaos journal of a run directory (chaos.jsonl) and undo every injection it lists
without a recovery: continue stopped processes, resume paused ones through the built-in
target's admin API, unthrottle consumer groups. Proxy toxics and stressors lived in the
crashed process and ended with it, and so did a built-in target it started: when its admin
API refuses connections or the paused process is gone, there is nothing left to undo.
Without --data, the newest run under runs/ is used.
Refused while the run that wrote the journal still runs.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return chaosRecoverRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.DataDir, "data", "", "run directory whose chaos.jsonl lists the injected faults")
	return cmd
}

func chaosRecoverRun(ctx context.Context, opts *ChaosRecoverOptions) error {
	dir := opts.DataDir
	if dir == "" {
		var err error
		if dir, err = newestJournalDir("runs"); err != nil {
			return err
		}
	}
	path := filepath.Join(dir, chaos.JournalFile)
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("%w: recover faults: %w", ErrInvalid, err)
	}
	results, err := chaos.RecoverJournal(ctx, path, chaos.AdminExecutor{}, chaos.ConsumerExecutor{})
	for _, r := range results {
		state := "recovered"
		if !r.Done {
			state = "NOT RECOVERED"
		}
		fmt.Fprintf(opts.IO.Out, "%s %s on %s: %s\n", state, r.Entry.Fault, r.Entry.Target, r.Note)
	}
	switch {
	case errors.Is(err, chaos.ErrOwnerAlive):
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	case errors.Is(err, chaos.ErrBadJournal):
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	case err != nil:
		return err
	}
	fmt.Fprintf(opts.IO.Out, "%s: %d faults were left injected, none is now\n", path, len(results))
	return nil
}

// newestJournalDir finds the most recently written journal under root.
func newestJournalDir(root string) (string, error) {
	matches, _ := filepath.Glob(filepath.Join(root, "*", chaos.JournalFile))
	if len(matches) == 0 {
		return "", fmt.Errorf("%w: no run under %s has a %s; pass --data RUNDIR", ErrInvalid, root, chaos.JournalFile)
	}
	sort.Slice(matches, func(i, j int) bool {
		a, _ := os.Stat(matches[i])
		b, _ := os.Stat(matches[j])
		return a != nil && b != nil && a.ModTime().After(b.ModTime())
	})
	return filepath.Dir(matches[0]), nil
}
