package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/redline-dev/redline/target/sqldb"
	"github.com/redline-dev/redline/target/sqldb/sqldbtest"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"redline": func() { os.Exit(Main()) },
	})
}

// TestScripts runs the command-line scripts in testdata/script: redline as a user runs it,
// against a local server ($TARGET) that answers /ok, /fail (500) and /slow (50 ms).
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			srv := httptest.NewServer(scriptHandler())
			env.Defer(srv.Close)
			env.Setenv("TARGET", srv.URL)
			if dsn := os.Getenv(sqldbtest.EnvDSN); dsn != "" {
				env.Setenv(sqldbtest.EnvDSN, dsn)
				env.Defer(func() { dropRunSchemas(env.T(), env.WorkDir, dsn) })
			}
			return nil
		},
		// [pg]: a PostgreSQL test server is set; without one the script stops there, or fails
		// under $REDLINE_REQUIRE_PG=1.
		Condition: func(cond string) (bool, error) {
			if cond != "pg" {
				return false, fmt.Errorf("unknown condition %q", cond)
			}
			if os.Getenv(sqldbtest.EnvDSN) == "" && os.Getenv(sqldbtest.EnvRequire) == "1" {
				return false, fmt.Errorf("$%s is not set and $%s=1", sqldbtest.EnvDSN, sqldbtest.EnvRequire)
			}
			return os.Getenv(sqldbtest.EnvDSN) != "", nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exits": cmdExits,
		},
	})
}

// dropRunSchemas drops the schemas of every target a script ran on PostgreSQL (their
// DATA/postgres.json under work, at most two levels down).
func dropRunSchemas(t testscript.T, work, dsn string) {
	for _, pattern := range []string{"*/" + sqldb.ServerFile, "*/*/" + sqldb.ServerFile} {
		files, _ := filepath.Glob(filepath.Join(work, pattern))
		for _, f := range files {
			srv, err := sqldb.ReadServer(filepath.Dir(f))
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				err = sqldb.DropSchemas(ctx, dsn, srv.Prefix)
				cancel()
			}
			if err != nil {
				t.Log("drop the script's schemas: ", err)
			}
		}
	}
}

func scriptHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	// /u/N?n=N: a templated URL reached with its variables filled in; anything else is a 404.
	mux.HandleFunc("/u/", func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimPrefix(r.URL.Path, "/u/")
		if _, err := strconv.ParseUint(id, 10, 64); err != nil || r.URL.Query().Get("n") != id {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("ok"))
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond)
		w.Write([]byte("slow"))
	})
	return mux
}

// cmdExits runs `exits CODE redline ARGS...`: the command must exit with exactly CODE, its
// output going to the script's stdout and stderr. A background form is `exits CODE after DUR
// signal redline ARGS...`, which sends SIGINT after DUR (the halt button).
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE [after DUR interrupt] COMMAND ARGS...")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: bad code %q", args[0])
	}
	args = args[1:]
	var interruptAfter time.Duration
	if args[0] == "after" && len(args) > 3 && args[2] == "interrupt" {
		if interruptAfter, err = time.ParseDuration(args[1]); err != nil {
			ts.Fatalf("exits: bad duration %q", args[1])
		}
		args = args[3:]
	}
	path, err := exec.LookPath(args[0])
	if err != nil {
		// testscript puts its commands on the script's PATH, not the test's.
		path = ts.MkAbs(args[0])
		for _, dir := range filepathList(ts.Getenv("PATH")) {
			if p := dir + "/" + args[0]; fileExists(p) {
				path = p
				break
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args[1:]...)
	cmd.Dir = ts.Getenv("WORK")
	cmd.Env = append(os.Environ(), "PATH="+ts.Getenv("PATH"), "HOME="+ts.Getenv("HOME"))
	cmd.Stdout, cmd.Stderr = ts.Stdout(), ts.Stderr()
	if err := cmd.Start(); err != nil {
		ts.Fatalf("exits: %v", err)
	}
	if interruptAfter > 0 {
		timer := time.AfterFunc(interruptAfter, func() { cmd.Process.Signal(os.Interrupt) })
		defer timer.Stop()
	}
	err = cmd.Wait()
	got := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		got = ee.ExitCode()
	} else if err != nil {
		ts.Fatalf("exits: %v", err)
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[0], got, want)
	}
}

func filepathList(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == os.PathListSeparator {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
