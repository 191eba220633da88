package linux

import (
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/sandbox"
)

func linuxConfig(settings ...sandbox.Setting) sandbox.Config {
	for i := range settings {
		settings[i].Line = 3 + i
	}
	return sandbox.Config{Backend: Name, File: "p.yaml", Line: 2, Settings: settings}
}

func intSetting(k, v string) sandbox.Setting { return sandbox.Setting{Key: k, Value: v, Kind: "int"} }
func strSetting(k, v string) sandbox.Setting { return sandbox.Setting{Key: k, Value: v, Kind: "str"} }

// The registered driver is built from the policy file's section, over the
// defaults New fills in; Config shows what it runs with.
func TestSettingsReachTheDriver(t *testing.T) {
	var reg sandbox.Registration
	for _, r := range sandbox.List() {
		if r.Name == Name {
			reg = r
		}
	}
	tests := []struct {
		name string
		cfg  sandbox.Config
		want map[string]any
	}{
		{"defaults", sandbox.Config{Backend: Name}, map[string]any{
			"pool_size": 2 * runtime.NumCPU(), "min_idle": 1, "idle_timeout": "30s", "release_after": "5m0s", "exec": "auto", "prefork": true}},
		{"every setting", linuxConfig(intSetting("pool_size", "3"), intSetting("min_idle", "2"), strSetting("idle_timeout", "5m"),
			strSetting("release_after", "1h"), strSetting("exec", "cold"), sandbox.Setting{Key: "prefork", Value: "false", Kind: "bool"}), map[string]any{
			"pool_size": 3, "min_idle": 2, "idle_timeout": "5m0s", "release_after": "1h0m0s", "exec": "cold", "prefork": false}},
		{"release never", linuxConfig(strSetting("release_after", "never")), map[string]any{
			"pool_size": 2 * runtime.NumCPU(), "min_idle": 1, "idle_timeout": "30s", "release_after": "never", "exec": "auto", "prefork": true}},
		{"min_idle 0 is none", linuxConfig(intSetting("min_idle", "0")), map[string]any{
			"pool_size": 2 * runtime.NumCPU(), "min_idle": 0, "idle_timeout": "30s", "release_after": "5m0s", "exec": "auto", "prefork": true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := reg.New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, d.(sandbox.Configurable).Config()); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
	d, _ := reg.New(linuxConfig(intSetting("min_idle", "0")))
	if got := d.(*Driver).opts.MinIdle; got >= 0 {
		t.Errorf("min_idle: 0 gave Options.MinIdle %d, want negative (none)", got)
	}
}

func TestSettingsErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  sandbox.Config
		want string
	}{
		{"unknown", linuxConfig(intSetting("uid", "0")), `policy p.yaml:3: backends.linux: unknown setting "uid" (known: exec, idle_timeout, min_idle, pool_size, prefork, release_after)`},
		{"bad release", linuxConfig(strSetting("release_after", "0")), `policy p.yaml:3: backends.linux.release_after: "0" is not a positive duration such as 30s or 5m, or never`},
		{"pool of 0", linuxConfig(intSetting("pool_size", "0")), "policy p.yaml:3: backends.linux.pool_size: 0 is out of range (1 to 1024)"},
		{"bad exec", linuxConfig(strSetting("exec", "warm")), `policy p.yaml:3: backends.linux.exec: must be one of auto, zygote, prestart, cold, got "warm"`},
		{"bad timeout", linuxConfig(strSetting("idle_timeout", "soon")), `policy p.yaml:3: backends.linux.idle_timeout: "soon" is not a positive duration`},
		{"min_idle above pool", linuxConfig(intSetting("pool_size", "2"), intSetting("min_idle", "3")), "policy p.yaml:4: backends.linux.min_idle: 3 is more than pool_size (2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := optionsFrom(tt.cfg)
			if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("optionsFrom: %v; want invalid containing %q", err, tt.want)
			}
		})
	}
}
