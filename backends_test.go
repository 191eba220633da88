package skillbox_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/policy"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// sizedDriver is a backend with one setting, "size", that tells from Open
// which configuration the driver running a call was built with.
type sizedDriver struct{ size string }

func (d *sizedDriver) Name() string { return "test-configured" }
func (d *sizedDriver) Probe(context.Context) sandbox.Capabilities {
	return sandbox.Capabilities{Available: false, Reason: "test double"}
}
func (d *sizedDriver) Open(context.Context, sandbox.Spec) (sandbox.Sandbox, error) {
	return nil, errdefs.New(errdefs.Unavailable, "opened by the driver of size %s", d.size)
}

func init() {
	sandbox.Register(sandbox.Registration{Name: "test-configured", New: func(cfg sandbox.Config) (sandbox.Driver, error) {
		d := &sizedDriver{size: "default"}
		return d, cfg.Decode(map[string]func(sandbox.Setting) error{
			"size": func(s sandbox.Setting) error { d.size = s.Value; return nil },
		})
	}})
}

func policyFile(t *testing.T, text string) *policy.Policy {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := policy.Load(path, false)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A backend's section of the policy file reaches the driver that runs the
// Runtime's calls; without a section the backend keeps its defaults.
func TestPolicyBackendsReachTheDriver(t *testing.T) {
	pol := policyFile(t, "backends:\n  test-configured: {size: 3}\n")
	rt, _ := lifecycleRuntime(t, skillbox.WithPolicy(pol))
	_, err := rt.Call(context.Background(), "test/life", nil, skillbox.CallOptions{Backend: "test-configured"})
	if err == nil || !strings.Contains(err.Error(), "opened by the driver of size 3") {
		t.Fatalf("call: %v; want it opened by the configured driver", err)
	}
	plain, _ := lifecycleRuntime(t, skillbox.WithPolicy(policyFile(t, "version: 1\n")))
	_, err = plain.Call(context.Background(), "test/life", nil, skillbox.CallOptions{Backend: "test-configured"})
	if err == nil || !strings.Contains(err.Error(), "size default") {
		t.Fatalf("call without a section: %v; want the default driver", err)
	}
}

// Every setting of every backend that has settings, set in the policy file
// to a value other than its default, is the driver's: the section goes
// through skillbox.New, sandbox.NewBackends and the backend's registration.
func TestPolicyBackendsReachEveryDriver(t *testing.T) {
	for _, tt := range []struct {
		backend, section string
		want             map[string]any
	}{
		{"linux", "pool_size: 3\n    min_idle: 2\n    idle_timeout: 5m\n    release_after: 1h\n    exec: cold\n    prefork: false",
			map[string]any{"pool_size": 3, "min_idle": 2, "idle_timeout": "5m0s", "release_after": "1h0m0s", "exec": "cold", "prefork": false}},
		{"pyodide", "idle: 2\n    max_workers: 6\n    recycle: 20\n    install: false",
			map[string]any{"idle": 2, "max_workers": 6, "recycle": 20, "install": false}},
		{"gvisor", "platform: kvm", map[string]any{"platform": "kvm"}},
	} {
		t.Run(tt.backend, func(t *testing.T) {
			if _, err := sandbox.Lookup(tt.backend); err != nil {
				t.Skipf("no %s backend in this build: %v", tt.backend, err)
			}
			pol := policyFile(t, "backends:\n  "+tt.backend+":\n    "+tt.section+"\n")
			rt, _ := lifecycleRuntime(t, skillbox.WithPolicy(pol))
			d, err := skillbox.Driver(rt, tt.backend)
			if err != nil {
				t.Fatal(err)
			}
			got := d.(sandbox.Configurable).Config()
			for k, want := range tt.want {
				if got[k] != want {
					t.Errorf("%s = %v, want %v (config %v)", k, got[k], want, got)
				}
			}
			if len(got) != len(tt.want) {
				t.Errorf("config %v has settings the test does not set: cover them", got)
			}
		})
	}
	if _, err := sandbox.Lookup("linux"); err != nil {
		t.Skipf("no linux backend in this build: %v", err)
	}
	// Without a section and with the user's cache folder, the Runtime uses
	// the process-wide default driver, as before the section existed.
	userCache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", userCache)
	plain, _ := lifecycleRuntime(t, skillbox.WithCacheDir(filepath.Join(userCache, "skillbox")))
	d, err := skillbox.Driver(plain, "linux")
	shared, _ := sandbox.Lookup("linux")
	if err != nil || d != shared {
		t.Errorf("no section: %v, %v; want the shared default driver", d, err)
	}
	// With a cache folder of its own, it gets a driver of its own (whose
	// images go there: TestContainerSkill).
	own, _ := lifecycleRuntime(t)
	if d, err = skillbox.Driver(own, "linux"); err != nil || d == shared {
		t.Errorf("own cache folder: %v, %v; want a driver of the Runtime's own", d, err)
	}
}

// A bad backends entry stops New with errdefs.Invalid naming FILE:LINE.
func TestPolicyBackendsErrors(t *testing.T) {
	pol := policyFile(t, "version: 1\nbackends:\n  test-configured: {colour: red}\n  nosuch: {}\n")
	_, err := skillbox.New(skillbox.WithPolicy(pol), skillbox.WithRoots(), skillbox.WithCacheDir(t.TempDir()))
	if !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("New: %v; want invalid", err)
	}
	for _, want := range []string{
		pol.Path + `:3: backends.test-configured: unknown setting "colour" (known: size)`,
		pol.Path + `:4: backends.nosuch: unknown backend "nosuch"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
