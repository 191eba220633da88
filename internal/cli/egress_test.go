package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/errdefs"
)

// serve's grant flags carry --egress-resolve (repeatable) into every call.
func TestGrantFlagsEgressResolve(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want []string
		err  string
	}{
		{[]string{"--egress-resolve", "a.test=127.0.0.1", "--egress-resolve", "b.test=::1"}, []string{"a.test=127.0.0.1", "b.test=::1"}, ""},
		{nil, nil, ""},
		{[]string{"--egress-resolve", "a.test=127.0.0.1", "--egress-resolve", "*.b.test=10.0.0.1"}, nil, `--egress-resolve "*.b.test=10.0.0.1"`},
		{[]string{"--egress-resolve", "a.test=0.0.0.0"}, nil, "unspecified"},
	} {
		var g grantFlags
		c := &cmdContext{env: Env{LookupEnv: func(string) (string, bool) { return "", false }}}
		fs := newFlags(c, "serve", "")
		g.register(c, fs, "skills")
		if _, err := parse(fs, tt.args); err != nil {
			t.Fatal(err)
		}
		opts, _, err := g.options(c)
		if tt.err != "" {
			if errdefs.KindOf(err) != errdefs.Invalid || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%v: err = %v; want invalid containing %q", tt.args, err, tt.err)
			}
			continue
		}
		if err != nil || !slices.Equal(opts.EgressResolve, tt.want) {
			t.Errorf("%v: EgressResolve = %v, err %v; want %v", tt.args, opts.EgressResolve, err, tt.want)
		}
	}
}

// A secret the policy binds to a host the skill cannot reach is denied
// before anything runs, naming the binding; the value is never printed.
func TestRunSecretBindingDenied(t *testing.T) {
	h := newHarness(t)
	h.env["ECHO_TOKEN"] = "tok-value-123"
	pol := filepath.Join(h.project, "policy.yaml")
	os.WriteFile(pol, []byte("secrets:\n  ECHO_TOKEN: {hosts: [api.example.com]}\n"), 0o600)
	o := h.run("run", "test/echo", "--backend", "process", "--allow-env", "ECHO_TOKEN", "--policy", pol, "--json")
	if o.code != 3 || !strings.Contains(o.stdout, "network api.example.com for secret ECHO_TOKEN") || !strings.Contains(o.stdout, "secrets.ECHO_TOKEN.hosts at "+pol+":2") {
		t.Fatalf("exit %d stdout %s stderr %s", o.code, o.stdout, o.stderr)
	}
	if strings.Contains(o.stdout+o.stderr, "tok-value-123") {
		t.Error("the value was printed")
	}
}
