package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/redline-dev/redline/target/supervisor"
)

// TargetUpOptions are the inputs of `redline target up`.
type TargetUpOptions struct {
	IO      IO
	Units   int
	DataDir string
	Listen  string
	Admin   string
	Defects []string
	NATS    string
	DSN     string
}

// NewCmdTargetUp returns `redline target up`.
func NewCmdTargetUp(streams IO, runF func(context.Context, *TargetUpOptions) error) *cobra.Command {
	opts := &TargetUpOptions{IO: streams}
	cmd := &cobra.Command{
		Use:   "up [--units N] [--data DIR] [--listen ADDR] [--admin ADDR] [--defect NAME]...",
		Short: "Run the built-in target in the foreground until interrupted",
		Long: fmt.Sprintf(`Start the router, N units (a primary and a standby process each) and the 3 core zone
replicas, print the router's and the admin API's addresses, and supervise them until
interrupted; then stop every process. DIR/topology.json lists every process (role, pid,
address); DIR/admin.token (mode 0600) is the admin API's bearer token.

With --dsn, every unit replica's and consumer group's database is a schema on that
PostgreSQL server (synchronous_commit=on) instead of a SQLite file in DIR: schemas
<prefix>_unit_<unit>_<replica> and <prefix>_consumer_<group>, the prefix drawn once per data
dir and recorded with the DSN in DIR/postgres.json (mode 0600), so a later 'target up' or
'target audit' on DIR finds them. The schemas stay when the target stops, as SQLite files
would; drop them with DROP SCHEMA ... CASCADE. The DSN is never logged with its password.

Seeded defects break one guarantee each, so the audit can prove it catches them: %v.`, supervisor.Defects()),
		Example: `  redline target up --units 4 --data /tmp/paycell
  redline target up --defect async-replication --listen 127.0.0.1:0 --admin 127.0.0.1:0
  redline target up --dsn postgres://paycell@127.0.0.1:5432/paycell --data /tmp/paycell-pg`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return targetUpRun(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.IntVar(&opts.Units, "units", 4, "number of units")
	f.StringVar(&opts.DataDir, "data", defaultTargetData, "data directory: databases, logs, topology.json, admin.token")
	f.StringVar(&opts.Listen, "listen", "127.0.0.1:8080", "the router's (business API) address; port 0 picks a free one")
	f.StringVar(&opts.Admin, "admin", "127.0.0.1:8081", "the admin API's address, loopback only; port 0 picks a free one")
	f.StringArrayVar(&opts.Defects, "defect", nil, "switch a seeded defect on (repeatable)")
	f.StringVar(&opts.NATS, "nats", "", "an external NATS JetStream server's URL (default: an embedded broker process, SyncAlways)")
	f.StringVar(&opts.DSN, "dsn", "", "a PostgreSQL server for the units' and consumers' databases, a schema each (default: SQLite files in --data)")
	return cmd
}

func targetUpRun(ctx context.Context, opts *TargetUpOptions) error {
	start := time.Now()
	cfg := supervisor.Config{
		Units: opts.Units, DataDir: opts.DataDir, Listen: opts.Listen, Admin: opts.Admin, Defects: opts.Defects, NATS: opts.NATS,
		DSN: opts.DSN,
		Ready: func(t supervisor.Topology) {
			fmt.Fprintf(opts.IO.Out, "redline target: %d units, %d processes, ready in %v\n", opts.Units, len(t.Processes), time.Since(start).Round(time.Millisecond))
			fmt.Fprintf(opts.IO.Out, "router  http://%s\n", t.Router)
			fmt.Fprintf(opts.IO.Out, "admin   http://%s  (bearer token in %s/admin.token)\n", t.Admin, opts.DataDir)
			fmt.Fprintf(opts.IO.Out, "data    %s  (topology.json, logs/)\n", opts.DataDir)
			if t.Postgres != nil {
				fmt.Fprintf(opts.IO.Out, "storage PostgreSQL %s, schemas %s_* (synchronous_commit=on)\n", t.Postgres.DSN, t.Postgres.Prefix)
			}
			if len(opts.Defects) > 0 {
				fmt.Fprintf(opts.IO.Out, "defects %v\n", opts.Defects)
			}
			fmt.Fprintln(opts.IO.Out, "Ctrl-C stops every process.")
		},
	}
	err := supervisor.Run(ctx, cfg)
	switch {
	case errors.Is(err, supervisor.ErrInvalidConfig):
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("%w: %w", ErrAborted, err) // interrupted before it was ready
	case err != nil:
		return fmt.Errorf("run target: %w", err)
	}
	fmt.Fprintln(opts.IO.Out, "redline target: every process stopped")
	return nil
}
