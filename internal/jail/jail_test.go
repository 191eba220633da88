//go:build linux

package jail

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/internal/egress"
)

// shell is a root of the host's /bin/sh with a fixed environment.
func shell(t *testing.T) Binary {
	t.Helper()
	sh, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Skipf("no /bin/sh: %v", err)
	}
	return Binary{Path: sh, Environ: []string{"ROOT_VAR=root", "HOME=" + ScratchDir}}
}

// TestConfigHoldsNoSecret: the config a start sends the init stage grants
// the proxy's variables and its CA, never a secret's value, and drops
// NO_PROXY; the root's own variables win over granted ones.
func TestConfigHoldsNoSecret(t *testing.T) {
	const value = "real-secret-value-0123456789"
	ph := egress.NewPlaceholder()
	ec := egress.Config{
		Allow:   rules(t, "api.test:443"),
		Secrets: []egress.Secret{{Name: "K", Placeholder: ph, Value: value, Hosts: rules(t, "api.test")}},
	}
	j, err := New(Spec{Root: shell(t), Egress: &ec,
		Env: map[string]string{"K": ph, "NO_PROXY": "*", "ROOT_VAR": "granted"}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := egress.New(*j.egress)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cfg := j.startConfig([]string{"-c", "true"}, p)
	b, _ := json.Marshal(cfg)
	if strings.Contains(string(b), value) {
		t.Fatalf("LEAK: the jail config carries the secret's value: %s", b)
	}
	for _, kv := range []string{"K=" + ph, "HTTPS_PROXY=http://" + ProxyAddr, "SSL_CERT_FILE=" + egress.DefaultCAFile, "ROOT_VAR=root"} {
		if !slices.Contains(cfg.Env, kv) {
			t.Errorf("env %q lacks %s", cfg.Env, kv)
		}
	}
	if slices.ContainsFunc(cfg.Env, func(kv string) bool { return strings.HasPrefix(kv, "NO_PROXY=") }) {
		t.Errorf("env %q keeps NO_PROXY", cfg.Env)
	}
	if cfg.Egress == nil || cfg.Egress.Port != 3128 || !bytes.Contains(cfg.Egress.CA, []byte("BEGIN CERTIFICATE")) || cfg.NoNetwork {
		t.Errorf("egress part %+v, no network %v", cfg.Egress, cfg.NoNetwork)
	}
	if cfg.Argv[0] != shell(t).Path || cfg.Argv[2] != "true" {
		t.Errorf("argv %q", cfg.Argv)
	}
}

// TestLaunch starts a shell in a jail of the Binary root: it is pid 1, runs
// as its id (NewID) in ScratchDir with exactly the root's environment, sees only its
// binds and the jail's own folders, and cannot write its root.
func TestLaunch(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: jails are tested as root (CI runs as root)")
	}
	if err := Usable(); err != nil {
		t.Skipf("host cannot build jails: %v", err)
	}
	t.Setenv("SKILLBOX_HOST_CANARY", "host")
	spec := Spec{Root: shell(t), Env: map[string]string{"GRANTED": "yes"}}
	BestEffort(&spec)
	j, err := New(spec)
	if err != nil {
		t.Fatal(err)
	}
	script := `echo "pid=$$ cwd=$(pwd) env=$ROOT_VAR,$GRANTED,$SKILLBOX_HOST_CANARY"
while read k a b c d; do case $k in Uid:) echo "uid=$a,$b,$c,$d";; esac; done < /proc/self/status
for f in /*; do printf '%s ' "$f"; done; echo
if echo x > /x 2>/dev/null; then echo root=writable; else echo root=read-only; fi`
	got := runShell(t, j, script)
	if !IsID(j.base.UID) || j.base.GID != j.base.UID {
		t.Errorf("the jail's ids %d/%d are not one of the jails'", j.base.UID, j.base.GID)
	}
	id := strconv.Itoa(j.base.UID)
	for _, want := range []string{"pid=1 cwd=/scratch env=root,yes,\n", "uid=" + id + "," + id + "," + id + "," + id + "\n", "root=read-only\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("jailed shell said %q, want %q in it", got, want)
		}
	}
	for _, hostOnly := range []string{"/home ", "/root ", "/tmp ", "/var ", "/etc/passwd"} {
		if strings.Contains(got, hostOnly) {
			t.Errorf("the jail's root shows %s: %q", hostOnly, got)
		}
	}
}

// runShell runs script with sh in a jail started from j and returns what
// it printed; a launch or a failing shell fails the test.
func runShell(t *testing.T, j *Jail, script string) string {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	launch, r := j.Launch(context.Background(), LaunchOptions{})
	defer r.Close()
	if err := launch(cmd); err != nil {
		t.Fatalf("launch: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("jailed shell: %v: %s", err, stderr.Bytes())
	}
	return out.String()
}
