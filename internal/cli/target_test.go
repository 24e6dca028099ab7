package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/redline-dev/redline/target/corezone"
)

func TestProcCoreFlags(t *testing.T) {
	peers := []string{"1=127.0.0.1:11,127.0.0.1:21", "2=127.0.0.1:12,127.0.0.1:22", "3=127.0.0.1:13,127.0.0.1:23"}
	tests := []struct {
		name    string
		opts    procCoreOptions
		want    corezone.Config
		wantErr bool
	}{
		{
			name: "ok",
			opts: procCoreOptions{ID: "2", DataDir: "/d", HTTP: "127.0.0.1:22", Raft: "127.0.0.1:12", Peers: peers,
				Units: []string{"a=r1@127.0.0.1:31,r2@127.0.0.1:32"}},
			want: corezone.Config{ID: "2", DataDir: "/d", HTTPAddr: "127.0.0.1:22", RaftAddr: "127.0.0.1:12",
				Peers: []corezone.Peer{
					{ID: "1", RaftAddr: "127.0.0.1:11", HTTPAddr: "127.0.0.1:21"},
					{ID: "2", RaftAddr: "127.0.0.1:12", HTTPAddr: "127.0.0.1:22"},
					{ID: "3", RaftAddr: "127.0.0.1:13", HTTPAddr: "127.0.0.1:23"},
				},
				Seeds: []corezone.UnitSeed{{Name: "a", Replicas: []corezone.ReplicaSeed{{Name: "r1", Addr: "127.0.0.1:31"}, {Name: "r2", Addr: "127.0.0.1:32"}}}},
			},
		},
		{
			name:    "peer without http address",
			opts:    procCoreOptions{ID: "1", DataDir: "/d", HTTP: "h", Raft: "r", Peers: []string{"1=127.0.0.1:11"}, Units: []string{"a=r1@x:1"}},
			wantErr: true,
		},
		{
			name:    "unit replica without address",
			opts:    procCoreOptions{ID: "1", DataDir: "/d", HTTP: "h", Raft: "r", Peers: peers[:1], Units: []string{"a=r1"}},
			wantErr: true,
		},
		{
			name:    "not among the peers",
			opts:    procCoreOptions{ID: "9", DataDir: "/d", HTTP: "h", Raft: "r", Peers: peers, Units: []string{"a=r1@x:1"}},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.opts.config()
			if tt.wantErr {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("error %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}
}

func TestTargetUpFlags(t *testing.T) {
	var got *TargetUpOptions
	cmd := NewCmdTargetUp(IO{}, func(_ context.Context, o *TargetUpOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"--units", "2", "--data", "/tmp/d", "--listen", "127.0.0.1:0", "--defect", "no-fencing", "--defect", "async-replication"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	want := &TargetUpOptions{Units: 2, DataDir: "/tmp/d", Listen: "127.0.0.1:0", Admin: "127.0.0.1:8081", Defects: []string{"no-fencing", "async-replication"}}
	if diff := cmp.Diff(got, want, cmp.FilterPath(func(p cmp.Path) bool { return p.String() == "IO" }, cmp.Ignore())); diff != "" {
		t.Errorf("(-got +want):\n%s", diff)
	}
}

func TestTargetExitCodes(t *testing.T) {
	empty := t.TempDir()
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"unknown defect", []string{"target", "up", "--defect", "gremlins", "--data", filepath.Join(empty, "x")}, ExitInvalid},
		{"zero units", []string{"target", "up", "--units", "0", "--data", filepath.Join(empty, "y")}, ExitInvalid},
		{"admin off loopback", []string{"target", "up", "--admin", "0.0.0.0:0", "--data", filepath.Join(empty, "z")}, ExitInvalid},
		{"audit of nothing", []string{"target", "audit", "--data", empty}, ExitInvalid},
		{"audit with both", []string{"target", "audit", "--data", empty, "--url", "http://127.0.0.1:1"}, ExitInvalid},
		{"audit by url without token", []string{"target", "audit", "--url", "http://127.0.0.1:1"}, ExitInvalid},
		{"proc with arguments", []string{"target", "proc", "router", "extra"}, ExitInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(adminTokenEnv, "")
			var out, errOut bytes.Buffer
			got := Execute(context.Background(), IO{In: os.Stdin, Out: &out, ErrOut: &errOut}, tt.args)
			if got != tt.want {
				t.Errorf("exit %d, want %d; stderr: %s", got, tt.want, errOut.String())
			}
		})
	}
}
