package unit_test

import (
	"encoding/json"
	"testing"

	"github.com/redline-dev/redline/target/audit"
)

type auditReport = audit.Report

func wrap(f func(testing.TB) audit.Report) func(testing.TB) auditReport { return f }

func jsonUnmarshal(raw []byte, v any) error { return json.Unmarshal(raw, v) }
