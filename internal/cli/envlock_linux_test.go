package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/skillbox-dev/skillbox/internal/jail"
	"github.com/skillbox-dev/skillbox/internal/skillenv"
	"github.com/skillbox-dev/skillbox/internal/skillenv/envtest"
)

// envHarness is a harness whose pip uses a loopback index serving the
// wheels folder it returns (publish into it at any time).
func envHarness(t *testing.T) (*harness, string) {
	t.Helper()
	h, wheels, _ := envIndexHarness(t)
	return h, wheels
}

// envIndexHarness is envHarness that also returns the count of files the
// index has served.
func envIndexHarness(t *testing.T) (*harness, string, *atomic.Int64) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: environments are built in a jail")
	}
	if err := jail.Usable(); err != nil {
		t.Skipf("host cannot build jails: %v", err)
	}
	if _, err := skillenv.PipWheel(); err != nil {
		t.Skip(err)
	}
	h := newHarness(t)
	wheels := t.TempDir()
	url, fetched := envtest.Index(t, wheels)
	h.env["PIP_INDEX_URL"], h.env["PIP_CONFIG_FILE"] = url, os.DevNull
	return h, wheels, fetched
}

// reqSkill writes the skill test/NAME into root: it requires reqs and
// returns the VERSION of the module mod.
func reqSkill(t *testing.T, root, name, reqs, mod string) {
	t.Helper()
	dir := filepath.Join(root, "test", name)
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte("name: "+name+"\nversion: \"1\"\ndescription: d\nrequirements: "+reqs+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "skill.py"), []byte(fmt.Sprintf(`import %[1]s
from skillware.core.base_skill import BaseSkill
class S(BaseSkill):
    def execute(self, params):
        return {"version": %[1]s.VERSION}
`, mod)), 0o644)
}

func fileHash(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// TestEnvLocked: run --locked runs the set the lockfile records, installed
// by pip in hash-checking mode, not the requirements resolved again: after
// a newer version is published, an unlocked run gets it and a locked run
// the locked one. A recorded hash that does not match what the index
// serves is denied with pip's report; a version the index does not serve
// is unavailable naming it; a set without hashes is refused.
func TestEnvLocked(t *testing.T) {
	h, wheels := envHarness(t)
	envtest.Wheel(t, wheels, "alpha", "1.0", "VERSION = '1.0'\n")
	reqSkill(t, filepath.Join(h.project, "skills"), "withreq", `["alpha"]`, "alpha")
	run := []string{"run", "test/withreq", "--backend", "linux", "--json"}
	locked := append(run, "--locked")

	if o := h.run("lock", "test/withreq"); o.code != 0 {
		t.Fatalf("lock: %d %s%s", o.code, o.stdout, o.stderr)
	}
	lockPath := filepath.Join(h.project, "skills.lock")
	data, err := os.ReadFile(lockPath)
	want := `"alpha==1.0 sha256=` + fileHash(t, filepath.Join(wheels, "alpha-1.0-py3-none-any.whl")) + `"`
	if err != nil || !strings.Contains(string(data), want) {
		t.Fatalf("the lockfile lacks %s: %v\n%s", want, err, data)
	}

	envtest.Wheel(t, wheels, "alpha", "1.1", "VERSION = '1.1'\n")
	if o := h.run("env", "prune"); o.code != 0 {
		t.Fatalf("prune: %d %s%s", o.code, o.stdout, o.stderr)
	}
	if o := h.run(run...); o.code != 0 || !strings.Contains(o.stdout, `"version":"1.1"`) {
		t.Errorf("unlocked run after alpha 1.1 was published: %d %s%s", o.code, o.stdout, o.stderr)
	}
	o := h.run(locked...)
	if o.code != 0 || !strings.Contains(o.stdout, `"version":"1.0"`) || !strings.Contains(o.stderr, "building the environment of test/withreq") {
		t.Errorf("locked run: %d %s%s", o.code, o.stdout, o.stderr)
	}
	if o := h.run(locked...); o.code != 0 || !strings.Contains(o.stdout, `"version":"1.0"`) || strings.Contains(o.stderr, "building the environment") {
		t.Errorf("locked run again (built): %d %s%s", o.code, o.stdout, o.stderr)
	}
	o = h.run("env", "list", "--json")
	if envs, _ := o.envelope(t)["environments"].([]any); len(envs) != 2 {
		t.Errorf("env list: want the unlocked and the locked environment: %s", o.stdout)
	}

	hashRE := regexp.MustCompile(`alpha==1\.0 sha256=[0-9a-f]{64}`)
	edit := func(to string) {
		t.Helper()
		if err := os.WriteFile(lockPath, hashRE.ReplaceAll(data, []byte(to)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	edit("alpha==1.0 sha256=" + strings.Repeat("0", 64))
	o = h.run(locked...)
	if o.code != 3 || !strings.Contains(o.stdout, "lockfile environment") || !strings.Contains(o.stdout, "do not match the hashes") ||
		!strings.Contains(o.stdout, "Expected sha256 "+strings.Repeat("0", 64)) || !strings.Contains(o.stdout, "'skillbox lock test/withreq'") {
		t.Errorf("locked run with a tampered hash: %d %s%s", o.code, o.stdout, o.stderr)
	}
	t.Logf("tampered hash: %s", o.stdout)
	edit("alpha==0.9 sha256=" + strings.Repeat("0", 64))
	if o = h.run(locked...); o.code != 5 || !strings.Contains(o.stdout, "alpha==0.9") {
		t.Errorf("locked run of a version the index lacks: %d %s%s", o.code, o.stdout, o.stderr)
	}
	edit("alpha==1.0")
	if o = h.run(locked...); o.code != 3 || !strings.Contains(o.stdout, "alpha==1.0 has no hash") {
		t.Errorf("locked run of a set without hashes: %d %s%s", o.code, o.stdout, o.stderr)
	}
}

// TestEnvTrustedSet: trust records the resolved set of an external
// skill's environment, and a call of the trusted skill installs exactly
// that set (pip's hash-checking mode), not its requirements resolved
// again: a newer version published on the index changes nothing, and
// --trust-remote-code (which the trust entry does not govern) gets it;
// trusting again records the new set, which calls then run. A trusted set
// whose hash does not match what the index serves is denied with pip's
// report and the command that trusts again; a version the index no longer
// serves is unavailable naming it.
func TestEnvTrustedSet(t *testing.T) {
	h, wheels := envHarness(t)
	envtest.Wheel(t, wheels, "alpha", "1.0", "VERSION = '1.0'\n")
	ext := h.external()
	reqSkill(t, ext, "withreq", `["alpha"]`, "alpha")
	run := []string{"run", "test/withreq", "--backend", "linux", "--json"}

	o := h.run("trust", "test/withreq", "--yes", "--json")
	sk, _ := o.envelope(t)["skill"].(map[string]any)
	if env, _ := sk["environment"].([]any); o.code != 0 || len(env) != 1 || !strings.HasPrefix(env[0].(string), "alpha==1.0 sha256=") {
		t.Fatalf("trust: %d %s%s", o.code, o.stdout, o.stderr)
	}
	if o := h.run(run...); o.code != 0 || !strings.Contains(o.stdout, `"version":"1.0"`) {
		t.Fatalf("trusted run: %d %s%s", o.code, o.stdout, o.stderr)
	}

	envtest.Wheel(t, wheels, "alpha", "1.1", "VERSION = '1.1'\n")
	if o := h.run("env", "prune"); o.code != 0 {
		t.Fatalf("prune: %d %s%s", o.code, o.stdout, o.stderr)
	}
	o = h.run(run...)
	if o.code != 0 || !strings.Contains(o.stdout, `"version":"1.0"`) || !strings.Contains(o.stderr, "the trusted set: alpha==1.0 sha256=") {
		t.Errorf("trusted run after alpha 1.1 was published: %d %s%s", o.code, o.stdout, o.stderr)
	}
	if o := h.run(append(run, "--trust-remote-code")...); o.code != 0 || !strings.Contains(o.stdout, `"version":"1.1"`) {
		t.Errorf("--trust-remote-code: %d %s%s", o.code, o.stdout, o.stderr)
	}
	o = h.run("trust", "test/withreq", "--yes")
	if o.code != 0 || !strings.Contains(o.stdout, "+ alpha==1.1") || !strings.Contains(o.stdout, "- alpha==1.0") {
		t.Errorf("trust again: %d %s%s", o.code, o.stdout, o.stderr)
	}
	if o := h.run(run...); o.code != 0 || !strings.Contains(o.stdout, `"version":"1.1"`) {
		t.Errorf("run after trusting the new set: %d %s%s", o.code, o.stdout, o.stderr)
	}

	store := filepath.Join(h.env["XDG_CONFIG_HOME"], "skillbox", "trust.json")
	data, err := os.ReadFile(store)
	hashRE := regexp.MustCompile(`alpha==1\.1 sha256=[0-9a-f]{64}`)
	if err != nil || !hashRE.Match(data) {
		t.Fatalf("the trust store lacks the set: %v\n%s", err, data)
	}
	edit := func(to string) {
		t.Helper()
		if err := os.WriteFile(store, hashRE.ReplaceAll(data, []byte(to)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	edit("alpha==1.1 sha256=" + strings.Repeat("0", 64))
	o = h.run(run...)
	if o.code != 3 || !strings.Contains(o.stdout, "denied: trust: ") || !strings.Contains(o.stdout, "do not match the hashes its trust entry records") ||
		!strings.Contains(o.stdout, "Expected sha256 "+strings.Repeat("0", 64)) || !strings.Contains(o.stdout, "'skillbox trust ") {
		t.Errorf("trusted run with a tampered hash: %d %s%s", o.code, o.stdout, o.stderr)
	}
	edit("alpha==0.9 sha256=" + strings.Repeat("0", 64))
	if o = h.run(run...); o.code != 5 || !strings.Contains(o.stdout, "alpha==0.9") {
		t.Errorf("trusted run of a version the index lacks: %d %s%s", o.code, o.stdout, o.stderr)
	}
}

// TestEnvSdistsPolicy: a requirement the index serves only as a source
// distribution is unavailable by default (wheels only); the policy file's
// "sdists: allow" (here the skill's own entry) builds it, and env build
// and run agree on the environment (the setting is part of its key).
func TestEnvSdistsPolicy(t *testing.T) {
	h, dists := envHarness(t)
	envtest.BuiltSdist(t, dists, "beta", "1.0", `"VERSION = 'from-sdist'\n"`)
	reqSkill(t, filepath.Join(h.project, "skills"), "fromsdist", `["beta"]`, "beta")
	run := []string{"run", "test/fromsdist", "--backend", "linux", "--json"}

	o := h.run(run...)
	if o.code != 5 || !strings.Contains(o.stdout, "beta") || !strings.Contains(o.stdout, "No matching distribution found for beta") {
		t.Errorf("sdist by default: %d %s%s", o.code, o.stdout, o.stderr)
	}

	h.env["XDG_CONFIG_HOME"] = filepath.Join(t.TempDir(), "config")
	pol := filepath.Join(h.env["XDG_CONFIG_HOME"], "skillbox", "policy.yaml")
	os.MkdirAll(filepath.Dir(pol), 0o755)
	os.WriteFile(pol, []byte("sdists: refuse\nskills:\n  test/fromsdist:\n    sdists: allow\n"), 0o644)
	if o := h.run("env", "build", "test/fromsdist", "--backend", "linux"); o.code != 0 || !strings.Contains(o.stdout, "beta==1.0") {
		t.Fatalf("env build with sdists allowed: %d %s%s", o.code, o.stdout, o.stderr)
	}
	o = h.run(run...)
	if o.code != 0 || !strings.Contains(o.stdout, `"version":"from-sdist"`) || strings.Contains(o.stderr, "building the environment") {
		t.Errorf("run with sdists allowed (built by env build): %d %s%s", o.code, o.stdout, o.stderr)
	}
}

// TestTrustAsksBeforeBuilding: trusting an external skill whose
// requirement the index serves only as a source distribution, with
// "sdists: allow", asks before anything of it runs: answering no leaves
// the index untouched (pip never fetched the sdist, so its build script
// never ran) and no environment built. Answering yes builds it (the build
// script runs, in its jail) and records the resolved set; a requirement
// that cannot be resolved after yes records nothing and says so.
func TestTrustAsksBeforeBuilding(t *testing.T) {
	h, dists, fetched := envIndexHarness(t)
	envtest.BuiltSdist(t, dists, "beta", "1.0", `"VERSION = 'built-%d'\n" % os.getpid()`)
	ext := h.external()
	reqSkill(t, ext, "fromsdist", `["beta"]`, "beta")
	reqSkill(t, ext, "missing", `["gamma"]`, "gamma")
	pol := filepath.Join(h.env["XDG_CONFIG_HOME"], "skillbox", "policy.yaml")
	os.MkdirAll(filepath.Dir(pol), 0o755)
	if err := os.WriteFile(pol, []byte("sdists: allow\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	envs := func() int {
		t.Helper()
		o := h.run("env", "list", "--json")
		if o.code != 0 {
			t.Fatalf("env list: %d %s%s", o.code, o.stdout, o.stderr)
		}
		e, _ := o.envelope(t)["environments"].([]any)
		return len(e)
	}
	trusted := func(id string) bool {
		t.Helper()
		o := h.run("trust", "--list", "--json")
		return strings.Contains(o.stdout, `"id":"`+id+`"`) || strings.Contains(o.stdout, `"id": "`+id+`"`)
	}
	h.terminal = true

	o := h.runStdin("n\n", "trust", "test/fromsdist")
	if o.code != 0 || !strings.Contains(o.stdout, "Not trusted") {
		t.Fatalf("answer n: %d %s%s", o.code, o.stdout, o.stderr)
	}
	if !strings.Contains(o.stdout, "python packages: beta") || !strings.Contains(o.stdout, "built after you confirm") ||
		!strings.Contains(o.stdout, "sdists: allow") || !strings.Contains(o.stderr, "then build its environment?") {
		t.Errorf("answer n: the review does not say the environment is built after confirming: %s%s", o.stdout, o.stderr)
	}
	if n := fetched.Load(); n != 0 {
		t.Errorf("answering no: the index served %d files (the sdist's build script could run)", n)
	}
	if n := envs(); n != 0 {
		t.Errorf("answering no: %d environments built", n)
	}
	if strings.Contains(o.stderr, "building the environment") || trusted("test/fromsdist") {
		t.Errorf("answering no: built or trusted: %s", o.stderr)
	}

	o = h.runStdin("y\n", "trust", "test/fromsdist")
	if o.code != 0 || !strings.Contains(o.stdout, "Trusted test/fromsdist") || !strings.Contains(o.stdout, "beta==1.0 sha256=") {
		t.Fatalf("answer y: %d %s%s", o.code, o.stdout, o.stderr)
	}
	if fetched.Load() == 0 || envs() != 1 || !trusted("test/fromsdist") {
		t.Errorf("answer y: fetched %d, the environment not built or the skill not trusted", fetched.Load())
	}

	// An environment already built is no secret: its set is shown before
	// asking, and nothing is built again.
	if o := h.run("untrust", "test/fromsdist"); o.code != 0 {
		t.Fatalf("untrust: %d %s", o.code, o.stderr)
	}
	n := fetched.Load()
	o = h.runStdin("n\n", "trust", "test/fromsdist")
	if o.code != 0 || !strings.Contains(o.stdout, "Not trusted") || !strings.Contains(o.stdout, "beta==1.0 sha256=") ||
		strings.Contains(o.stdout, "built after you confirm") || fetched.Load() != n {
		t.Errorf("answer n with the environment built: %d %s%s", o.code, o.stdout, o.stderr)
	}

	o = h.runStdin("y\n", "trust", "test/missing")
	if o.code != 5 || !strings.Contains(o.stderr, "nothing was recorded") || !strings.Contains(o.stderr, "gamma") {
		t.Errorf("answer y, unresolvable: %d %s%s", o.code, o.stdout, o.stderr)
	}
	if trusted("test/missing") {
		t.Error("a skill whose environment could not be built was trusted")
	}
	if o := h.run("trust", "test/missing", "--yes", "--json"); o.code != 5 || o.envelope(t)["error"].(map[string]any)["kind"] != "unavailable" {
		t.Errorf("--yes, unresolvable: %d %s%s", o.code, o.stdout, o.stderr)
	}

	// Outside every root, named by a relative path from a folder where its
	// id names nothing: trust and lock build its environment (they looked
	// it up again by id: "not found"), and the retry command they print
	// names its folder, which works from anywhere.
	elsewhere := filepath.Join(t.TempDir(), "elsewhere")
	reqSkill(t, elsewhere, "missing", `["gamma"]`, "gamma")
	t.Chdir(filepath.Join(elsewhere, "test"))
	retry := "`skillbox env build " + filepath.Join(elsewhere, "test", "missing") + "` retries"
	for _, args := range [][]string{{"trust", "./missing", "--yes"}, {"lock", "./missing"}} {
		if o := h.run(args...); o.code != 5 || strings.Contains(o.stderr, "not found") || !strings.Contains(o.stderr, retry) {
			t.Errorf("%v: %d %s%s", args, o.code, o.stdout, o.stderr)
		}
	}
}
