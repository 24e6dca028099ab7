package cli

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// NewCmdVersion returns `redline version`.
func NewCmdVersion(streams IO) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			v := "(devel)"
			if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
				v = bi.Main.Version
			}
			_, err := fmt.Fprintf(streams.Out, "redline %s\n", v)
			return err
		},
	}
}
