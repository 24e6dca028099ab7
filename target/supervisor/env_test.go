package supervisor

import (
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestChildEnvRuntimeSettings(t *testing.T) {
	t.Run("unset: one P per procsPerCPU CPUs", func(t *testing.T) {
		t.Setenv("GOMAXPROCS", "") // restored after the test
		os.Unsetenv("GOMAXPROCS")
		t.Setenv("GOGC", "")
		os.Unsetenv("GOGC")
		want := "GOMAXPROCS=" + strconv.Itoa(max(1, runtime.NumCPU()/procsPerCPU))
		if got := childEnv(); !slices.Contains(got, want) || !slices.Contains(got, "GOGC=200") {
			t.Errorf("childEnv() lacks %q or GOGC=200", want)
		}
	})
	t.Run("set by the user: kept", func(t *testing.T) {
		t.Setenv("GOMAXPROCS", "3")
		got := childEnv()
		var n int
		for _, kv := range got {
			if strings.HasPrefix(kv, "GOMAXPROCS=") {
				n++
				if kv != "GOMAXPROCS=3" {
					t.Errorf("childEnv() has %q, want the user's GOMAXPROCS=3", kv)
				}
			}
		}
		if n != 1 {
			t.Errorf("childEnv() has %d GOMAXPROCS entries, want 1", n)
		}
	})
}
