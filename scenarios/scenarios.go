// Package scenarios ships Redline's rehearsal plans inside the binary. Each file is a plan in
// the format of package plan; a test there checks that every one validates.
package scenarios

import "embed"

// FS holds the shipped plans, one YAML file each, at its root: smoke.yaml, midnight.yaml.
//
//go:embed *.yaml
var FS embed.FS
