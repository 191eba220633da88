package jailbuild

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/internal/skillenv"
	"github.com/skillbox-dev/skillbox/internal/skillenv/envtest"
)

// TestBuildHonoursPipConfig: the build's pip reads pip's configuration as
// the operator's would — a pip.conf named by PIP_CONFIG_FILE or found
// under HOME, PIP_EXTRA_INDEX_URL, an offline wheelhouse
// (PIP_NO_INDEX with PIP_FIND_LINKS), a cert setting naming the host's CA
// bundle — and reaches the configured index even on loopback and by name
// (localhost), in the jail.
func TestBuildHonoursPipConfig(t *testing.T) {
	py := need(t)
	// alpha needs beta; each test serves them as its configuration says.
	alpha, beta := t.TempDir(), t.TempDir()
	envtest.Wheel(t, alpha, "alpha", "1.0", "VERSION = '1.0'\nimport beta\n", "beta>=2")
	envtest.Wheel(t, beta, "beta", "2.1", "VERSION = '2.1'\n")
	both := t.TempDir()
	for _, d := range []string{alpha, beta} {
		m, _ := filepath.Glob(filepath.Join(d, "*.whl"))
		for _, f := range m {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(both, filepath.Base(f)), data, 0o644)
		}
	}
	byName := func(url string) string { return strings.Replace(url, "127.0.0.1", "localhost", 1) }
	writeConf := func(path, body string) string {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, tt := range []struct {
		name string
		// env is the operator's environment, made for the test (URLs
		// of the indexes it starts: the index of both, of alpha, of
		// beta; the folder of both wheels).
		env func(t *testing.T, all, a, b, wheels string) map[string]string
		// fetched[i]: whether the index of both, alpha's, beta's must
		// have served files.
		fetched [3]bool
	}{
		{
			name: "pip.conf named by PIP_CONFIG_FILE, index by name on loopback",
			env: func(t *testing.T, all, _, _, _ string) map[string]string {
				body := "[global]\nindex-url = " + byName(all) + "\n"
				if _, err := os.Stat(egress.DefaultCAFile); err == nil {
					// As Debian's pip.conf often has it: the build
					// reads the host's bundle at the path where the
					// jail shows its own.
					body += "cert = " + egress.DefaultCAFile + "\n"
				}
				conf := writeConf(filepath.Join(t.TempDir(), "pip.conf"), body)
				return map[string]string{"PIP_CONFIG_FILE": conf}
			},
			fetched: [3]bool{true, false, false},
		},
		{
			name: "the user's pip.conf under HOME",
			env: func(t *testing.T, all, _, _, _ string) map[string]string {
				home := t.TempDir()
				writeConf(filepath.Join(home, ".config", "pip", "pip.conf"), "[install]\nindex-url = "+all+"\n")
				return map[string]string{"HOME": home}
			},
			fetched: [3]bool{true, false, false},
		},
		{
			name: "PIP_EXTRA_INDEX_URL",
			env: func(t *testing.T, _, a, b, _ string) map[string]string {
				return map[string]string{"PIP_INDEX_URL": a, "PIP_EXTRA_INDEX_URL": byName(b), "PIP_CONFIG_FILE": os.DevNull}
			},
			fetched: [3]bool{false, true, true},
		},
		{
			name: "offline wheelhouse: PIP_NO_INDEX and PIP_FIND_LINKS",
			env: func(t *testing.T, _, _, _, wheels string) map[string]string {
				return map[string]string{"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": wheels, "PIP_CONFIG_FILE": os.DevNull}
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var counts [3]*atomic.Int64
			var urls [3]string
			for i, d := range []string{both, alpha, beta} {
				urls[i], counts[i] = envtest.Index(t, d)
			}
			env := tt.env(t, urls[0], urls[1], urls[2], both)
			idx, err := skillenv.IndexFromEnv(func(k string) string { return env[k] })
			if err != nil {
				t.Fatal(err)
			}
			req := skillenv.Request{Python: py, PythonVersion: "3", Requirements: []string{"alpha"}, Index: idx}
			var lines []string
			e, err := cache(t).Ensure(context.Background(), req, func(l string) { lines = append(lines, l) })
			if err != nil {
				t.Fatalf("%v\n%s", err, strings.Join(lines, "\n"))
			}
			if len(e.Resolved) != 2 || e.Resolved[0].String() != "alpha==1.0" || e.Resolved[1].String() != "beta==2.1" {
				t.Errorf("resolved %+v, want alpha 1.0 and beta 2.1", e.Resolved)
			}
			for i, want := range tt.fetched {
				if got := counts[i].Load() > 0; got != want {
					t.Errorf("index %d (%s) served files: %v, want %v", i, urls[i], got, want)
				}
			}
		})
	}
}
