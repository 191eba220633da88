package skillbox_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/internal/pyinterp"
	"github.com/skillbox-dev/skillbox/internal/skillenv/envtest"
	"github.com/skillbox-dev/skillbox/policy"
	"github.com/skillbox-dev/skillbox/sandbox"
	_ "github.com/skillbox-dev/skillbox/sandbox/all"
	"github.com/skillbox-dev/skillbox/skill"
)

// backendsUnderTest are the registered backends this host can run. The
// process backend is always among them when Python is installed.
func backendsUnderTest(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, r := range sandbox.List() {
		d, err := sandbox.Lookup(r.Name)
		if err != nil {
			t.Logf("backend %s: %v", r.Name, err)
			continue
		}
		if c := d.Probe(context.Background()); !c.Available {
			t.Logf("backend %s unavailable here: %s", r.Name, c.Reason)
			continue
		}
		names = append(names, r.Name)
	}
	if len(names) == 0 {
		t.Skip("no backend can run on this host (is python3 installed? run scripts/setup)")
	}
	return names
}

// TestSkillwareFixtures runs skills that reproduce real Skillware loading
// patterns (relative imports, importlib of siblings, sys.path insertion,
// data folders, yaml, skillware.core.* imports, aexecute-only skills,
// credentials granted or not, HTTPS to a service of an operator-trusted CA
// through the egress proxy) on every available backend and compares each
// result with what Skillware's own in-process loader returned
// (testdata/skillware/README.md says how expected.json was made). A case's
// env is what the host had: those variables are granted for the call.
func TestSkillwareFixtures(t *testing.T) {
	root, err := filepath.Abs("testdata/skillware")
	if err != nil {
		t.Fatal(err)
	}
	var caseEnv map[string]string // the running case's variables
	// The operator trusts the fixture service's CA (ca_file), as the
	// reference runner's host does.
	pol := &policy.Policy{}
	if err := pol.AddCAFile(filepath.Join(filepath.Dir(root), "skillware-tls", "ca.pem")); err != nil {
		t.Fatal(err)
	}
	// Skills that declare requirements get their environment on the
	// linux and pyodide backends: from a loopback index holding a
	// pure-Python PyYAML wheel packed from the host's (offline, and the
	// same code Skillware's run used, without its optional C extension).
	wheels := t.TempDir()
	if in, err := pyinterp.Resolve(context.Background(), ""); err == nil {
		envtest.InstalledWheel(t, wheels, in.Executable, "yaml", "PyYAML")
	}
	url, _ := envtest.Index(t, wheels)
	pip := map[string]string{"PIP_INDEX_URL": url, "PIP_CONFIG_FILE": os.DevNull}
	rt, err := skillbox.New(skillbox.WithRoots(skill.Root{Path: root, Tier: skill.TierProject}), skillbox.WithCacheDir(t.TempDir()),
		skillbox.WithPolicy(pol),
		skillbox.WithLookupEnv(func(name string) (string, bool) {
			if v, ok := pip[name]; ok {
				return v, ok
			}
			v, ok := caseEnv[name]
			return v, ok
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	files, err := filepath.Glob(filepath.Join(root, "*", "*", "expected.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures under %s: %v", root, err)
	}
	for _, file := range files {
		id := filepath.ToSlash(strings.TrimPrefix(filepath.Dir(file), root+string(filepath.Separator)))
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var cases []struct {
			Env    map[string]string `json:"env"`
			Params json.RawMessage   `json:"params"`
			Result any               `json:"result"`
		}
		if err := json.Unmarshal(data, &cases); err != nil {
			t.Fatalf("%s/expected.json: %v", id, err)
		}
		for _, backend := range backendsUnderTest(t) {
			t.Run(id+"/"+backend, func(t *testing.T) {
				for i, c := range cases {
					caseEnv = c.Env
					opts := skillbox.CallOptions{Backend: backend}
					for name := range c.Env {
						opts.AllowEnv = append(opts.AllowEnv, name)
					}
					params := c.Params
					if bytes.Contains(params, []byte(httpsOrigin)) {
						if backend != "linux" {
							// process grants no network; Pyodide has no
							// sockets for urllib or requests.
							t.Skipf("backend %s cannot run a skill's own HTTPS client", backend)
						}
						origin := fixtureService(t)
						params = bytes.ReplaceAll(params, []byte(httpsOrigin), []byte(origin))
						// The grant an operator gives this unmodified
						// manifest with run: --allow-net, --egress-resolve.
						opts.AllowNet = []string{strings.TrimPrefix(origin, "https://")}
						opts.EgressResolve = []string{"localhost=127.0.0.1"}
						opts.GrantUndeclared = true
					}
					res, err := rt.Call(context.Background(), id, params, opts)
					if err != nil && strings.Contains(err.Error(), "building a skill's environment needs the linux jail") {
						// Environments (PyYAML's, on pyodide) are built in a jail.
						t.Skipf("backend %s cannot build this skill's environment here: %v", backend, err)
					}
					if err != nil {
						t.Fatalf("case %d: %v", i, err)
					}
					var got any
					if err := json.Unmarshal(res.Value, &got); err != nil {
						t.Fatal(err)
					}
					if diff := cmp.Diff(c.Result, got); diff != "" {
						t.Errorf("case %d (params %s, env %v): result differs from Skillware's in-process loader (-want +got):\n%s", i, c.Params, c.Env, diff)
					}
				}
			})
		}
	}
}

// TestSkillwareRoots finds skills the way Skillware does — from
// .skillware.yaml (paths.project, paths.external, resolution.order, the
// legacy switch), the global config.yaml and SKILLWARE_SKILL_PATH — and
// checks that the copy that runs, on every available backend, is the one
// Skillware's loader runs (testdata/skillware-roots/expected.json, made by
// testdata/skillware/reference_runner.py ../skillware-roots).
func TestSkillwareRoots(t *testing.T) {
	fixture, err := filepath.Abs("testdata/skillware-roots")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(fixture, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Cwd    string            `json:"cwd"`
		Skill  string            `json:"skill"`
		Env    map[string]string `json:"roots_env"`
		Params json.RawMessage   `json:"params"`
		Result any               `json:"result"`
	}
	if err := json.Unmarshal(data, &cases); err != nil || len(cases) == 0 {
		t.Fatalf("expected.json: %v (%d cases)", err, len(cases))
	}
	backends := backendsUnderTest(t)
	for i, c := range cases {
		env := map[string]string{}
		for k, v := range c.Env {
			env[k] = strings.ReplaceAll(v, "{fixture}", fixture)
		}
		found, err := skill.FindRoots(skill.RootsEnv{Getenv: func(k string) string { return env[k] }, Cwd: filepath.Join(fixture, c.Cwd)})
		if err != nil {
			t.Fatalf("case %d: roots: %v", i, err)
		}
		rt, err := skillbox.New(skillbox.WithFoundRoots(found), skillbox.WithCacheDir(t.TempDir()))
		if err != nil {
			t.Fatal(err)
		}
		for _, backend := range backends {
			// Some copies come from an external root: trusted for the test.
			res, err := rt.Call(context.Background(), c.Skill, c.Params, skillbox.CallOptions{Backend: backend, TrustRemoteCode: true})
			if err != nil {
				t.Errorf("case %d (%s from %s, %v) on %s: %v", i, c.Skill, c.Cwd, c.Env, backend, err)
				continue
			}
			var got any
			if err := json.Unmarshal(res.Value, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.Result, got); diff != "" {
				t.Errorf("case %d (%s from %s, %v) on %s: not the copy Skillware runs (-want +got):\n%s", i, c.Skill, c.Cwd, c.Env, backend, diff)
			}
		}
		rt.Close()
	}
}

// httpsOrigin in a fixture's params stands for the origin of the loopback
// HTTPS service of fixtureService (reference_runner.py serves the same).
const httpsOrigin = "$HTTPS_ORIGIN"

var fixtureServiceOnce struct {
	sync.Once
	origin string
	err    error
}

// fixtureService starts (once per test binary) the loopback HTTPS service
// of the network fixtures, with the certificate testdata/skillware-tls's
// CA issued for localhost, and returns its origin: GET /v1/status answers
// 200 {"path", "service"}, anything else 404 {"error": "not found"}.
func fixtureService(t *testing.T) string {
	t.Helper()
	s := &fixtureServiceOnce
	s.Do(func() {
		cert, err := tls.LoadX509KeyPair("testdata/skillware-tls/server.pem", "testdata/skillware-tls/server.key")
		if err != nil {
			s.err = err
			return
		}
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			code, body := http.StatusNotFound, map[string]string{"error": "not found"}
			if r.Method == http.MethodGet && r.URL.Path == "/v1/status" {
				code, body = http.StatusOK, map[string]string{"path": r.URL.Path, "service": "skillware-fixture"}
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			json.NewEncoder(w).Encode(body)
		}))
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		srv.StartTLS() // lives as long as the test binary
		s.origin = "https://localhost:" + strconv.Itoa(srv.Listener.Addr().(*net.TCPAddr).Port)
	})
	if s.err != nil {
		t.Fatal(s.err)
	}
	return s.origin
}
