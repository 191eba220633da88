//go:build linux

package jail

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/internal/testpki"
)

// caPEM is a fresh CA certificate in PEM.
func caPEM(t *testing.T) []byte { t.Helper(); return testpki.New(t, "ca.test").CAPEM }

// TestTrustBundlePlan: with any network grant a start's config carries
// one bundle (planned once: the host's, then the operator's CACerts; each
// start adds its proxy's interception CA) at the usual path, and the
// variables point at it; without a grant there is none. A folder covered
// by a bind moves the bundle to caFileFallback, bound over the usual path
// when the bind shows a file there, with a note when it does not.
func TestTrustBundlePlan(t *testing.T) {
	op := caPEM(t)
	t.Run("no network", func(t *testing.T) {
		j, err := New(Spec{Root: shell(t)})
		if err != nil {
			t.Fatal(err)
		}
		cfg := j.startConfig([]string{"-c", "true"}, nil)
		if cfg.Egress != nil || j.CAFile() != "" || slices.ContainsFunc(cfg.Env, func(kv string) bool { return strings.HasPrefix(kv, "SSL_CERT_FILE=") }) {
			t.Errorf("a jail without a network grant has a bundle: %+v %q", cfg.Egress, cfg.Env)
		}
	})
	for _, secrets := range []bool{false, true} {
		name := "network"
		ec := egress.Config{Allow: rules(t, "api.test:443"), CACerts: op}
		if secrets {
			name = "network and secrets"
			ec.Secrets = []egress.Secret{{Name: "K", Placeholder: egress.NewPlaceholder(), Value: "v-0001", Hosts: rules(t, "api.test")}}
		}
		t.Run(name, func(t *testing.T) {
			j, err := New(Spec{Root: shell(t), Egress: &ec})
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 2; i++ { // two starts, two proxies
				p, err := egress.New(*j.egress)
				if err != nil {
					t.Fatal(err)
				}
				cfg := j.startConfig([]string{"-c", "true"}, p)
				p.Close()
				if cfg.Egress.CAFile != egress.DefaultCAFile || cfg.Egress.CAOver != "" {
					t.Errorf("bundle at %q (over %q), want %s", cfg.Egress.CAFile, cfg.Egress.CAOver, egress.DefaultCAFile)
				}
				sys, _, sysErr := egress.SystemBundle()
				if want := egress.JoinPEM(sys, op, p.CACertPEM()); !bytes.Equal(cfg.Egress.CA, want) {
					t.Errorf("bundle is not host + operator + interception CA (%d bytes, want %d)", len(cfg.Egress.CA), len(want))
				}
				if (sysErr != nil) != (len(j.TrustNotes()) > 0) {
					t.Errorf("host bundle error %v, notes %q", sysErr, j.TrustNotes())
				}
				if secrets != (p.CACertPEM() != nil) {
					t.Errorf("interception CA present: %v, want %v", p.CACertPEM() != nil, secrets)
				}
				for _, k := range []string{"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"} {
					if !slices.Contains(cfg.Env, k+"="+egress.DefaultCAFile) {
						t.Errorf("env %q lacks %s=%s", cfg.Env, k, egress.DefaultCAFile)
					}
				}
			}
		})
	}
	t.Run("covered folder with the file", func(t *testing.T) {
		dir := t.TempDir()
		usual := filepath.Join(dir, "ca-certificates.crt")
		if err := os.WriteFile(usual, []byte("the host's own bundle\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		ec := egress.Config{Allow: rules(t, "api.test:443"), CAFile: usual}
		j, err := New(Spec{Root: shell(t), Egress: &ec, ReadPaths: []string{dir}})
		if err != nil {
			t.Fatal(err)
		}
		if j.CAFile() != caFileFallback || j.caOver != usual || len(j.TrustNotes()) > 1 {
			t.Errorf("bundle at %q over %q (notes %q), want %s over %s", j.CAFile(), j.caOver, j.TrustNotes(), caFileFallback, usual)
		}
	})
	t.Run("the file itself bound", func(t *testing.T) {
		// A read path that names the usual bundle (pip's cert setting
		// does, for an environment build): the jail's bundle is bound
		// over it, not written beneath the read-only bind.
		usual := filepath.Join(t.TempDir(), "ca-certificates.crt")
		if err := os.WriteFile(usual, []byte("the host's own bundle\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		ec := egress.Config{Allow: rules(t, "api.test:443"), CAFile: usual}
		j, err := New(Spec{Root: shell(t), Egress: &ec, ReadPaths: []string{usual}})
		if err != nil {
			t.Fatal(err)
		}
		if j.CAFile() != caFileFallback || j.caOver != usual || len(j.TrustNotes()) > 1 {
			t.Errorf("bundle at %q over %q (notes %q), want %s over %s", j.CAFile(), j.caOver, j.TrustNotes(), caFileFallback, usual)
		}
	})
	t.Run("covered folder without the file", func(t *testing.T) {
		dir := t.TempDir()
		ec := egress.Config{Allow: rules(t, "api.test:443"), CAFile: filepath.Join(dir, "absent.crt")}
		j, err := New(Spec{Root: shell(t), Egress: &ec, ReadPaths: []string{dir}})
		if err != nil {
			t.Fatal(err)
		}
		if j.CAFile() != caFileFallback || j.caOver != "" || !slices.ContainsFunc(j.TrustNotes(), func(n string) bool { return strings.Contains(n, caFileFallback) }) {
			t.Errorf("bundle at %q over %q, notes %q", j.CAFile(), j.caOver, j.TrustNotes())
		}
	})
	t.Run("bad CACerts", func(t *testing.T) {
		ec := egress.Config{Allow: rules(t, "api.test:443"), CACerts: []byte("not PEM")}
		if _, err := New(Spec{Root: shell(t), Egress: &ec}); err == nil || !strings.Contains(err.Error(), "CACerts") {
			t.Errorf("bad CACerts: %v", err)
		}
	})
}

// TestTrustBundleInJail: in a started jail the bundle is read-only at the
// usual path and at SSL_CERT_FILE, and at a covered folder's file or a
// bound file, bound over what the host has there.
func TestTrustBundleInJail(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: jails are tested as root (CI runs as root)")
	}
	if err := Usable(); err != nil {
		t.Skipf("host cannot build jails: %v", err)
	}
	op := caPEM(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	covered := filepath.Join(dir, "ca-certificates.crt")
	if err := os.WriteFile(covered, []byte("HOST FILE\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `for f in "$SSL_CERT_FILE" "$REQUESTS_CA_BUNDLE" "$USUAL"; do
  n=0; last=
  while IFS= read -r l; do n=$((n+1)); last=$l; done < "$f" || echo "unreadable $f"
  echo "$f lines=$n last=$last"
  if (echo x >> "$f") 2>/dev/null; then echo "writable $f"; fi
done`
	lastLine := string(bytes.Split(bytes.TrimSpace(op), []byte("\n"))[bytes.Count(bytes.TrimSpace(op), []byte("\n"))])
	for _, tc := range []struct {
		name   string
		usual  string
		read   []string
		caFile string
	}{
		{"usual path", egress.DefaultCAFile, nil, ""},
		{"covered folder", covered, []string{dir}, covered},
		{"bound file", covered, []string{covered}, covered},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ec := egress.Config{Allow: rules(t, "api.test:443"), CACerts: op, CAFile: tc.caFile}
			spec := Spec{Root: shell(t), Egress: &ec, ReadPaths: tc.read, Env: map[string]string{"USUAL": tc.usual}}
			BestEffort(&spec)
			j, err := New(spec)
			if err != nil {
				t.Fatal(err)
			}
			got := runShell(t, j, script)
			if strings.Contains(got, "unreadable") || strings.Contains(got, "writable") || strings.Contains(got, "HOST FILE") {
				t.Errorf("jailed shell said %q", got)
			}
			// Every path shows the bundle, which ends with the operator's
			// certificate (no secret: no interception CA after it).
			for _, p := range []string{j.CAFile(), tc.usual} {
				if !strings.Contains(got, p+" lines=") || !strings.Contains(got, "last="+lastLine) {
					t.Errorf("%s: jailed shell said %q, want the bundle ending with %q", p, got, lastLine)
				}
			}
		})
	}
}
