// Command redline is a full-link stress testing and chaos rehearsal platform.
package main

import (
	"os"

	"github.com/redline-dev/redline/internal/cli"
)

func main() { os.Exit(cli.Main()) }
