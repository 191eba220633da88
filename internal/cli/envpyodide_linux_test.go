package cli

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/internal/skillenv/envtest"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// TestEnvLockedPyodide: run --locked on the pyodide backend installs the
// set the lockfile records (a pure-Python wheel: the same file, and hash,
// as the linux backend's), not the requirements resolved again; a
// recorded hash that does not match what the index serves is denied.
func TestEnvLockedPyodide(t *testing.T) {
	d, err := sandbox.Lookup("pyodide")
	if err != nil {
		t.Skip(err)
	}
	if c := d.Probe(context.Background()); !c.Available {
		t.Skipf("pyodide unavailable: %s", c.Reason)
	}
	h, wheels := envHarness(t)
	envtest.Wheel(t, wheels, "alpha", "1.0", "VERSION = '1.0'\n")
	reqSkill(t, filepath.Join(h.project, "skills"), "withreq", `["alpha"]`, "alpha")
	run := []string{"run", "test/withreq", "--backend", "pyodide", "--json"}
	locked := append(run, "--locked")
	if o := h.run("lock", "test/withreq"); o.code != 0 {
		t.Fatalf("lock: %d %s%s", o.code, o.stdout, o.stderr)
	}
	lockPath := filepath.Join(h.project, "skills.lock")
	data, err := os.ReadFile(lockPath)
	if err != nil || !strings.Contains(string(data), "alpha==1.0 sha256=") {
		t.Fatalf("lockfile: %v\n%s", err, data)
	}

	envtest.Wheel(t, wheels, "alpha", "1.1", "VERSION = '1.1'\n")
	if o := h.run(run...); o.code != 0 || !strings.Contains(o.stdout, `"version":"1.1"`) {
		t.Errorf("unlocked run after alpha 1.1 was published: %d %s%s", o.code, o.stdout, o.stderr)
	}
	if o := h.run(locked...); o.code != 0 || !strings.Contains(o.stdout, `"version":"1.0"`) {
		t.Errorf("locked run: %d %s%s", o.code, o.stdout, o.stderr)
	}

	tampered := regexp.MustCompile(`alpha==1\.0 sha256=[0-9a-f]{64}`).ReplaceAll(data, []byte("alpha==1.0 sha256="+strings.Repeat("0", 64)))
	if err := os.WriteFile(lockPath, tampered, 0o644); err != nil {
		t.Fatal(err)
	}
	if o := h.run(locked...); o.code != 3 || !strings.Contains(o.stdout, "lockfile environment") || !strings.Contains(o.stdout, "do not match the hashes") {
		t.Errorf("locked run with a tampered hash: %d %s%s", o.code, o.stdout, o.stderr)
	}
}
