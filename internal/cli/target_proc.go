package cli

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/redline-dev/redline/target/consumer"
	"github.com/redline-dev/redline/target/corezone"
	"github.com/redline-dev/redline/target/events"
	"github.com/redline-dev/redline/target/router"
	"github.com/redline-dev/redline/target/unit"
)

// NewCmdTargetProc returns the hidden `redline target proc core|unit|router`: one process of the
// built-in target, as the supervisor starts it. Its flags are the supervisor's business.
func NewCmdTargetProc(streams IO) *cobra.Command {
	cmd := &cobra.Command{
		Use:    "proc core|unit|router [flags]",
		Short:  "Run one process of the built-in target (started by 'redline target up')",
		Hidden: true,
		Args:   groupArgs,
		RunE:   groupRun,
	}
	cmd.AddCommand(newCmdProcCore(streams), newCmdProcUnit(streams), newCmdProcRouter(streams),
		newCmdProcBroker(), newCmdProcConsumer(streams))
	return cmd
}

// procCoreOptions are the flags of `redline target proc core`.
type procCoreOptions struct {
	ID, DataDir, HTTP, Raft string
	Peers, Units            []string
}

func newCmdProcCore(streams IO) *cobra.Command {
	opts := &procCoreOptions{}
	cmd := &cobra.Command{
		Use:   "core --id N --data DIR --http ADDR --raft ADDR --peer ID=RAFT,HTTP... --unit NAME=R@ADDR,R@ADDR...",
		Short: "One core zone replica",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := opts.config()
			if err != nil {
				return err
			}
			cfg.Log = streams.ErrOut
			return procExit("core", corezone.Run(cmd.Context(), cfg))
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.ID, "id", "", "this replica's id")
	f.StringVar(&opts.DataDir, "data", "", "the replica's data directory")
	f.StringVar(&opts.HTTP, "http", "", "the core HTTP API's address")
	f.StringVar(&opts.Raft, "raft", "", "the Raft transport's address")
	f.StringArrayVar(&opts.Peers, "peer", nil, "a replica of the group, ID=RAFT_ADDR,HTTP_ADDR (repeatable, this one included)")
	f.StringArrayVar(&opts.Units, "unit", nil, "a unit of the initial layout, NAME=REPLICA@ADDR,REPLICA@ADDR (repeatable)")
	return cmd
}

// config parses the flags into a corezone.Config.
func (o *procCoreOptions) config() (corezone.Config, error) {
	cfg := corezone.Config{ID: o.ID, DataDir: o.DataDir, HTTPAddr: o.HTTP, RaftAddr: o.Raft}
	for _, p := range o.Peers {
		id, addrs, ok := strings.Cut(p, "=")
		raftAddr, httpAddr, ok2 := strings.Cut(addrs, ",")
		if !ok || !ok2 {
			return cfg, fmt.Errorf("%w: --peer %q: want ID=RAFT_ADDR,HTTP_ADDR", ErrInvalid, p)
		}
		cfg.Peers = append(cfg.Peers, corezone.Peer{ID: id, RaftAddr: raftAddr, HTTPAddr: httpAddr})
	}
	for _, u := range o.Units {
		name, list, ok := strings.Cut(u, "=")
		if !ok {
			return cfg, fmt.Errorf("%w: --unit %q: want NAME=REPLICA@ADDR[,REPLICA@ADDR]", ErrInvalid, u)
		}
		seed := corezone.UnitSeed{Name: name}
		for _, r := range strings.Split(list, ",") {
			rname, addr, ok := strings.Cut(r, "@")
			if !ok {
				return cfg, fmt.Errorf("%w: --unit %q: replica %q: want REPLICA@ADDR", ErrInvalid, u, r)
			}
			seed.Replicas = append(seed.Replicas, corezone.ReplicaSeed{Name: rname, Addr: addr})
		}
		cfg.Seeds = append(cfg.Seeds, seed)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return cfg, nil
}

// procUnitOptions are the flags of `redline target proc unit`.
type procUnitOptions struct {
	Unit, Replica, DataDir, Listen, Role string
	Epoch                                int64
	StandbyAddr, PrimaryAddr             string
	Core                                 []string
	Defects                              []string
	NATS                                 string
	DSN, Schema                          string
}

func newCmdProcUnit(streams IO) *cobra.Command {
	opts := &procUnitOptions{}
	cmd := &cobra.Command{
		Use:   "unit --unit NAME --replica R --data DIR --listen ADDR --role ROLE --epoch E --core ADDRS [...]",
		Short: "One replica of a unit",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := unit.Config{
				Unit: opts.Unit, Replica: opts.Replica, DataDir: opts.DataDir, Listen: opts.Listen, Role: opts.Role,
				Epoch: opts.Epoch, StandbyAddr: opts.StandbyAddr, PrimaryAddr: opts.PrimaryAddr, CoreAddrs: opts.Core, NATS: opts.NATS,
				DSN: opts.DSN, Schema: opts.Schema,
				Logger: slog.New(slog.NewTextHandler(streams.ErrOut, nil)),
			}
			for _, d := range opts.Defects {
				cfg.Defects = append(cfg.Defects, unit.Defect(d))
			}
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("%w: %w", ErrInvalid, err)
			}
			return procExit("unit", unit.Run(cmd.Context(), cfg))
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Unit, "unit", "", "the unit's name")
	f.StringVar(&opts.Replica, "replica", "", "the replica's name (r1, r2)")
	f.StringVar(&opts.DataDir, "data", "", "the replica's data directory")
	f.StringVar(&opts.Listen, "listen", "", "the replica's HTTP address")
	f.StringVar(&opts.Role, "role", "", "role at start: primary, standby or catching_up")
	f.Int64Var(&opts.Epoch, "epoch", 0, "the unit's configuration epoch at start")
	f.StringVar(&opts.StandbyAddr, "standby-addr", "", "the standby a primary replicates to")
	f.StringVar(&opts.PrimaryAddr, "primary-addr", "", "the primary a catching-up replica copies")
	f.StringSliceVar(&opts.Core, "core", nil, "the core zone replicas' HTTP addresses, comma-separated")
	f.StringArrayVar(&opts.Defects, "defect", nil, "a seeded defect (repeatable)")
	f.StringVar(&opts.NATS, "nats", "", "the broker's URL the primary's relay publishes the outbox to")
	f.StringVar(&opts.DSN, "dsn", "", "a PostgreSQL server for the replica's database (default: SQLite in --data)")
	f.StringVar(&opts.Schema, "schema", "", "the replica's schema on the --dsn server")
	return cmd
}

func newCmdProcBroker() *cobra.Command {
	cfg := events.BrokerConfig{}
	cmd := &cobra.Command{
		Use:   "broker --data DIR --listen ADDR",
		Short: "The embedded NATS JetStream broker",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.DataDir == "" || cfg.Listen == "" {
				return fmt.Errorf("%w: --data and --listen are required", ErrInvalid)
			}
			return procExit("broker", events.RunBroker(cmd.Context(), cfg))
		},
	}
	cmd.Flags().StringVar(&cfg.DataDir, "data", "", "JetStream's data directory")
	cmd.Flags().StringVar(&cfg.Listen, "listen", "", "the client address")
	return cmd
}

func newCmdProcConsumer(streams IO) *cobra.Command {
	cfg := consumer.Config{}
	var defects []string
	cmd := &cobra.Command{
		Use:   "consumer --group NAME --data DIR --listen ADDR --nats URL",
		Short: "One consumer group",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Logger = slog.New(slog.NewTextHandler(streams.ErrOut, nil))
			for _, d := range defects {
				cfg.Defects = append(cfg.Defects, consumer.Defect(d))
			}
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("%w: %w", ErrInvalid, err)
			}
			return procExit("consumer", consumer.Run(cmd.Context(), cfg))
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Group, "group", "", "the consumer group: ledger, settlement or notification")
	f.StringVar(&cfg.DataDir, "data", "", "the group's data directory")
	f.StringVar(&cfg.Listen, "listen", "", "the group's HTTP address")
	f.StringVar(&cfg.NATS, "nats", "", "the broker's URL")
	f.StringVar(&cfg.DSN, "dsn", "", "a PostgreSQL server for the group's database (default: SQLite in --data)")
	f.StringVar(&cfg.Schema, "schema", "", "the group's schema on the --dsn server")
	f.StringArrayVar(&defects, "defect", nil, "a seeded defect (repeatable)")
	return cmd
}

func newCmdProcRouter(streams IO) *cobra.Command {
	cfg := router.Config{}
	cmd := &cobra.Command{
		Use:   "router --listen ADDR --core ADDRS",
		Short: "The router (business API)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Listen == "" || len(cfg.CoreAddrs) == 0 {
				return fmt.Errorf("%w: --listen and --core are required", ErrInvalid)
			}
			cfg.Log = streams.ErrOut
			return procExit("router", router.Run(cmd.Context(), cfg))
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Listen, "listen", "", "the business API's address")
	f.StringSliceVar(&cfg.CoreAddrs, "core", nil, "the core zone replicas' HTTP addresses, comma-separated")
	return cmd
}

// procExit names the process in its error; stopped by its supervisor (SIGTERM) is a clean exit.
func procExit(role string, err error) error {
	if err != nil {
		return fmt.Errorf("run %s: %w", role, err)
	}
	return nil
}
