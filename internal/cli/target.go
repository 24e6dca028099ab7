package cli

import (
	"github.com/spf13/cobra"
)

// defaultTargetData is where `redline target up` keeps the target's data when --data is not given.
const defaultTargetData = ".redline/target"

// NewCmdTarget returns `redline target` and its verbs: up, audit, and the hidden proc.
func NewCmdTarget(streams IO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "target",
		Short: "Run and audit the built-in payment target",
		Long: `The built-in target (paycell) is a unitized payment system to rehearse against: a router,
units of a primary and a synchronous standby, and a 3-replica core zone on Raft, each a
separate process. 'redline target up' runs it in the foreground; 'redline target audit'
checks its books.`,
		Args: groupArgs,
		RunE: groupRun,
	}
	cmd.AddCommand(
		NewCmdTargetUp(streams, nil),
		NewCmdTargetAudit(streams, nil),
		NewCmdTargetProc(streams),
	)
	return cmd
}
