package trust

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/skill"
)

// The helper mode of TestUpdateConcurrentProcesses: this test binary,
// started with these variables set, trusts one skill in one store.
const (
	helperSkillEnv = "SKILLBOX_TRUST_TEST_HELPER_SKILL"
	helperStoreEnv = "SKILLBOX_TRUST_TEST_HELPER_STORE"
	helperGoEnv    = "SKILLBOX_TRUST_TEST_HELPER_GO"
)

// helperHold is how long each helper keeps the store it read before it
// saves: without the lock every helper reads the store before any saves,
// so all but one entry would be lost.
const helperHold = 200 * time.Millisecond

// namedBundle writes a small skill folder cat/<name> under root.
func namedBundle(t *testing.T, root, name string) string {
	t.Helper()
	dir := filepath.Join(root, "cat", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte("name: "+name+"\nversion: \"1.0\"\ndescription: d\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "skill.py"), []byte("from skillware.core.base_skill import BaseSkill\nclass S(BaseSkill):\n    def execute(self, p):\n        return {}\n"), 0o644)
	return dir
}

// updateHelper is the child's side: wait for the go file, then trust the
// skill at dir in the store, holding the store for helperHold.
func updateHelper(dir, store, goFile string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	sk, err := (&skill.Resolver{}).Resolve(dir)
	if err != nil {
		fail(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(goFile); err == nil {
			break
		}
		if time.Now().After(deadline) {
			fail(errors.New("no go file"))
		}
	}
	err = Update(store, func(s *Store) error {
		time.Sleep(helperHold)
		_, err := s.Trust(sk, time.Now())
		return err
	})
	if err != nil {
		fail(err)
	}
	os.Exit(0)
}

// TestUpdateConcurrentProcesses starts N processes (this test binary) that
// each trust a different skill in the same store at the same moment: every
// entry must be there afterwards.
func TestUpdateConcurrentProcesses(t *testing.T) {
	if dir := os.Getenv(helperSkillEnv); dir != "" {
		updateHelper(dir, os.Getenv(helperStoreEnv), os.Getenv(helperGoEnv))
		return
	}
	const n = 6
	tmp := t.TempDir()
	store := filepath.Join(tmp, "cfg", "trust.json")
	goFile := filepath.Join(tmp, "go")
	var want []string
	var cmds []*exec.Cmd
	var outs []*strings.Builder
	for i := range n {
		name := fmt.Sprintf("s%d", i)
		want = append(want, "cat/"+name)
		cmd := exec.Command(os.Args[0], "-test.run=^TestUpdateConcurrentProcesses$", "-test.count=1")
		cmd.Env = append(os.Environ(),
			helperSkillEnv+"="+namedBundle(t, tmp, name), helperStoreEnv+"="+store, helperGoEnv+"="+goFile)
		out := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, cmd), append(outs, out)
	}
	// Let every helper reach the start line before any of them goes.
	time.Sleep(300 * time.Millisecond)
	if err := os.WriteFile(goFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("helper %d: %v\n%s", i, err, outs[i])
		}
	}
	s, err := Open(store)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range s.Skills {
		got = append(got, e.ID)
	}
	if !slices.Equal(got, want) {
		t.Errorf("after %d concurrent updates the store holds %v, want %v (lost updates)", n, got, want)
	}
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(store + LockSuffix)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("lock file: %v %v, want mode 0600", fi, err)
		}
	}
}

func TestUpdateSavesOnlyOnSuccess(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "trust.json")
	sk := reload(t, namedBundle(t, dir, "a"))
	// fn fails: its error comes back as it is and nothing is written.
	boom := errdefs.New(errdefs.NotFound, "boom")
	err := Update(store, func(s *Store) error {
		if _, err := s.Trust(sk, time.Now()); err != nil {
			t.Fatal(err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want fn's error", err)
	}
	if _, err := os.Stat(store); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a failed update wrote the store: %v", err)
	}
	// fn succeeds: saved.
	if err := Update(store, func(s *Store) error { _, err := s.Trust(sk, time.Now()); return err }); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(store); err != nil || len(s.Skills) != 1 {
		t.Fatalf("after a successful update: %v %v", s, err)
	}
	// A broken store is refused as Open refuses it, fn never runs, and the
	// file is left for the operator to fix.
	broken := []byte(`{"version": 1, "skills": [`)
	os.WriteFile(store, broken, 0o600)
	ran := false
	err = Update(store, func(*Store) error { ran = true; return nil })
	if errdefs.KindOf(err) != errdefs.Invalid || !strings.Contains(err.Error(), "nothing in it is trusted") || ran {
		t.Errorf("broken store: err = %v, fn ran = %v; want invalid and fn not run", err, ran)
	}
	if data, _ := os.ReadFile(store); string(data) != string(broken) {
		t.Errorf("broken store was rewritten: %s", data)
	}
}

func TestUpdateRefusesSymlinkLockFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no O_NOFOLLOW on windows")
	}
	dir := t.TempDir()
	store := filepath.Join(dir, "trust.json")
	target := filepath.Join(dir, "elsewhere")
	if err := os.Symlink(target, store+LockSuffix); err != nil {
		t.Fatal(err)
	}
	err := Update(store, func(*Store) error { return nil })
	if errdefs.KindOf(err) != errdefs.Invalid || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("symlinked lock file: %v", err)
	}
	if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the link's target was created: %v", err)
	}
}
