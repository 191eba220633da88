package skillbox_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/cgroup"
	"github.com/skillbox-dev/skillbox/internal/skillenv"
	"github.com/skillbox-dev/skillbox/internal/skillenv/envtest"
	"github.com/skillbox-dev/skillbox/internal/skillenv/jailbuild"
	"github.com/skillbox-dev/skillbox/skill"
)

// nprocSkill returns the RLIMIT_NPROC its requirement was built under.
const nprocSkill = `import nproc
from skillware.core.base_skill import BaseSkill


class S(BaseSkill):
    def execute(self, params):
        return {"build_nproc": nproc.LIMIT}
`

// nprocFixture publishes the nproc sdist into a loopback index and writes
// the skill test/nproc, which requires it, under root. It returns the
// index's URL.
func nprocFixture(t *testing.T, root string) string {
	t.Helper()
	dists := t.TempDir()
	envtest.BuiltSdist(t, dists, "nproc", "1.0", `"LIMIT = %d\n" % resource.getrlimit(resource.RLIMIT_NPROC)[0]`)
	url, _ := envtest.Index(t, dists)
	dir := filepath.Join(root, "test", "nproc")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte("name: nproc\nversion: \"1\"\ndescription: d\nrequirements: [nproc]\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "skill.py"), []byte(nprocSkill), 0o644)
	return url
}

// TestEnvironmentBestEffort: through the Runtime, on a host whose cgroup
// controllers the environment build cannot use (its Builder sees a host
// that mounts none), a call is refused, unavailable, naming the missing
// layer and --best-effort; with best-effort the build runs without the
// controllers, saying so, its pids limit as RLIMIT_NPROC (which the
// package's build backend recorded), and the call runs on it.
func TestEnvironmentBestEffort(t *testing.T) {
	requireEnvironmentBuilds(t)
	root := t.TempDir()
	url := nprocFixture(t, root)
	var mu sync.Mutex
	var lines []string
	rt, err := skillbox.New(skillbox.WithRoots(skill.Root{Path: root, Tier: skill.TierProject}),
		skillbox.WithCacheDir(t.TempDir()), pipEnv(url), skillbox.WithEnvSdists(true),
		skillbox.WithEnvBuilder(jailbuild.Builder{Cgroups: &cgroup.Host{}}),
		skillbox.WithEnvProgress(func(l string) {
			mu.Lock()
			lines = append(lines, l)
			mu.Unlock()
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()

	_, err = rt.Call(context.Background(), "test/nproc", nil, skillbox.CallOptions{Backend: "linux"})
	if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "isolation layer memory is missing") || !strings.Contains(err.Error(), "--best-effort") {
		t.Fatalf("err = %v; want unavailable naming the missing memory layer and --best-effort", err)
	}
	res, err := rt.Call(context.Background(), "test/nproc", nil, skillbox.CallOptions{Backend: "linux", BestEffort: true})
	mu.Lock()
	defer mu.Unlock()
	if err != nil {
		t.Fatalf("best-effort: %v\n%s", err, strings.Join(lines, "\n"))
	}
	if want := fmt.Sprintf(`{"build_nproc":%d}`, skillenv.DefaultMaxPids); string(res.Value) != want {
		t.Errorf("result %s, want %s: the build's pids limit as RLIMIT_NPROC", res.Value, want)
	}
	var without []string
	for _, l := range lines {
		if strings.HasPrefix(l, "best-effort: building without the cgroup controller ") {
			without = append(without, l)
		}
	}
	if len(without) != 2 || !strings.Contains(strings.Join(without, "\n"), "controller pids") {
		t.Errorf("best-effort lines %q, want one per missing controller (memory, pids)", without)
	}
}

// TestNonRootEnvironmentBestEffort: the real binary as an unprivileged
// user, whom the host does not let create cgroups: `env build` refuses
// the build, unavailable, naming the missing layer and --best-effort;
// `run --best-effort` builds the environment without the controllers
// (saying so on stderr, its pids limit as RLIMIT_NPROC, which the
// package's build backend recorded) and runs the call on it.
func TestNonRootEnvironmentBestEffort(t *testing.T) {
	if _, err := skillenv.PipWheel(); err != nil {
		t.Skip(err)
	}
	command, home := nonRootCommand(t)
	url := nprocFixture(t, filepath.Join(home, "skills"))
	pol := filepath.Join(home, ".config", "skillbox", "policy.yaml")
	os.MkdirAll(filepath.Dir(pol), 0o755)
	os.WriteFile(pol, []byte("sdists: allow\n"), 0o644)
	run := func(args ...string) (code int, stdout, stderr string) {
		t.Helper()
		cmd := command(args...)
		cmd.Env = append(cmd.Env, "PIP_INDEX_URL="+url, "PIP_CONFIG_FILE="+os.DevNull)
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		cmd.Run()
		return cmd.ProcessState.ExitCode(), out.String(), errb.String()
	}

	code, stdout, stderr := run("env", "build", "test/nproc", "--backend", "linux", "--json")
	if code == 0 {
		t.Skip("the host lets this user create cgroups: builds have their controllers")
	}
	if code != 5 || !strings.Contains(stdout, "isolation layer memory is missing") || !strings.Contains(stdout, "--best-effort") {
		t.Fatalf("env build without --best-effort: %d %s%s", code, stdout, stderr)
	}
	code, stdout, stderr = run("run", "test/nproc", "--backend", "linux", "--best-effort", "--json")
	if want := fmt.Sprintf(`"build_nproc":%d`, skillenv.DefaultMaxPids); code != 0 || !strings.Contains(stdout, want) {
		t.Fatalf("run --best-effort: %d, want %s: %s%s", code, want, stdout, stderr)
	}
	if !strings.Contains(stderr, "best-effort: building without the cgroup controller memory") ||
		!strings.Contains(stderr, "best-effort: building without the cgroup controller pids") {
		t.Errorf("run --best-effort does not say what the build ran without:\n%s", stderr)
	}
}
