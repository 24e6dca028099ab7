package supervisor

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/redline-dev/redline/target/corezone"
)

func TestUnitStart(t *testing.T) {
	addrs := map[string]string{"r1": "127.0.0.1:1", "r2": "127.0.0.1:2"}
	tests := []struct {
		name    string
		u       corezone.Unit
		replica string
		want    startArgs
	}{
		{
			name: "the primary with its standby", replica: "r1",
			u:    corezone.Unit{Epoch: 4, Primary: "r1", Standby: "r2", StandbyOK: true, Addrs: addrs},
			want: startArgs{role: "primary", epoch: 4, standbyAddr: "127.0.0.1:2"},
		},
		{
			name: "the primary alone", replica: "r1",
			u:    corezone.Unit{Epoch: 5, Primary: "r1", Addrs: addrs},
			want: startArgs{role: "primary", epoch: 5},
		},
		{
			name: "the standby", replica: "r2",
			u:    corezone.Unit{Epoch: 4, Primary: "r1", Standby: "r2", StandbyOK: true, Addrs: addrs},
			want: startArgs{role: "standby", epoch: 4},
		},
		{
			name: "the replaced primary catches up from the new one", replica: "r1",
			u:    corezone.Unit{Epoch: 6, Primary: "r2", Addrs: addrs},
			want: startArgs{role: "catching_up", epoch: 6, primaryAddr: "127.0.0.1:2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := unitStart(tt.u, tt.replica)
			if diff := cmp.Diff(got, tt.want, cmp.AllowUnexported(startArgs{})); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}
}

func TestUnitMode(t *testing.T) {
	u := corezone.Unit{Primary: "r2", Standby: "r1", StandbyOK: true}
	tests := []struct {
		name, replica, role string
		answered            bool
		want                string
	}{
		{"primary", "r2", "primary", true, "primary"},
		{"standby", "r1", "standby", true, "standby"},
		{"standby catching up", "r1", "catching_up", true, "catching_up"},
		{"silent standby", "r1", "", false, "standby"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := unitMode(u, tt.replica, tt.answered, tt.role); got != tt.want {
				t.Errorf("unitMode = %q, want %q", got, tt.want)
			}
		})
	}
	if got := unitMode(corezone.Unit{Primary: "r2"}, "r1", true, "standby"); got != "out" {
		t.Errorf("a replica out of the configuration: %q, want out", got)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Units: 4, DataDir: "/tmp/x", Admin: "127.0.0.1:0", Listen: "127.0.0.1:8080"}
	tests := []struct {
		name string
		edit func(*Config)
		bad  bool
	}{
		{"ok", func(*Config) {}, false},
		{"localhost admin", func(c *Config) { c.Admin = "localhost:8081" }, false},
		{"no units", func(c *Config) { c.Units = 0 }, true},
		{"27 units", func(c *Config) { c.Units = 27 }, true},
		{"no data dir", func(c *Config) { c.DataDir = "" }, true},
		{"admin on every interface", func(c *Config) { c.Admin = "0.0.0.0:8081" }, true},
		{"admin without port", func(c *Config) { c.Admin = "127.0.0.1" }, true},
		{"admin port out of range", func(c *Config) { c.Admin = "127.0.0.1:65536" }, true},
		{"router port out of range", func(c *Config) { c.Listen = "127.0.0.1:99999" }, true},
		{"router port negative", func(c *Config) { c.Listen = "127.0.0.1:-1" }, true},
		{"router port a name", func(c *Config) { c.Listen = "127.0.0.1:http" }, true},
		{"router on a free port", func(c *Config) { c.Listen = "127.0.0.1:0" }, false},
		{"unknown defect", func(c *Config) { c.Defects = []string{"gremlins"} }, true},
		{"known defect", func(c *Config) { c.Defects = []string{"no-fencing"} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.edit(&c)
			err := c.Validate()
			if got := err != nil; got != tt.bad {
				t.Fatalf("Validate() = %v, want an error: %v", err, tt.bad)
			}
			if err != nil && !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("error %v is not ErrInvalidConfig", err)
			}
		})
	}
}

func TestLogName(t *testing.T) {
	for _, tt := range []struct{ role, unit, replica, want string }{
		{"core", "-", "2", "core-2.log"},
		{"unit", "b", "r1", "unit-b-r1.log"},
		{"router", "-", "-", "router.log"},
	} {
		if got := logName(tt.role, tt.unit, tt.replica); got != tt.want {
			t.Errorf("logName(%s, %s, %s) = %s, want %s", tt.role, tt.unit, tt.replica, got, tt.want)
		}
	}
}
