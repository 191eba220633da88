//go:build linux

package worker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// argvSkill reports what the harness left in __main__ and sys.argv, which
// must be what `-c Harness skillbox-worker` gives, bytecode or not.
const argvSkill = `
import sys
from skillware.core.base_skill import BaseSkill

class Argv(BaseSkill):
    @property
    def manifest(self):
        return {"name": "argv"}

    def execute(self, params):
        main = sys.modules["__main__"]
        return {"argv": sys.argv, "boot": [n for n in vars(main) if "boot" in n],
                "has_main": hasattr(main, "main"), "file": getattr(main, "__file__", None)}
`

// forgetBytecode drops the in-memory answers, so the next HarnessArgv reads
// the cache folder again.
func forgetBytecode() {
	bytecodeMu.Lock()
	clear(bytecodeArgv)
	bytecodeMu.Unlock()
}

func cachedHarness(t *testing.T) (argv []string, file string) {
	t.Helper()
	needPython(t)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	forgetBytecode()
	t.Cleanup(forgetBytecode)
	exe, err := filepath.EvalSymlinks(testPython)
	if err != nil {
		t.Fatal(err)
	}
	argv = HarnessArgv(context.Background(), testPython, exe)
	if len(argv) < 7 || argv[5] != bootstrap {
		t.Fatalf("no bytecode argv: %q", argv[:min(len(argv), 6)])
	}
	files, _ := filepath.Glob(filepath.Join(os.Getenv("XDG_CACHE_HOME"), "skillbox", "harness", "*.bin"))
	if len(files) != 1 {
		t.Fatalf("cache files: %q", files)
	}
	fi, err := os.Stat(files[0])
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cache file %v, %v: want mode 0600", fi.Mode(), err)
	}
	return argv, files[0]
}

func runArgv(t *testing.T, argv []string) string {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}
	cmd.Dir = t.TempDir()
	p, err := Start(context.Background(), cmd, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Init(tctx(t, 20*time.Second), Init{Bundle: writeBundle(t, map[string]string{"skill.py": argvSkill}), Mode: ModeSingle,
		Manifest: json.RawMessage(`{"name":"t/argv","parameters":{"type":"object"}}`)}); err != nil {
		t.Fatalf("init: %v (stderr: %s)", err, p.Stderr.Bytes())
	}
	return mustCall(t, p, 1, `{}`, nil)
}

// TestHarnessBytecode: the harness started from its cached bytecode
// behaves as the one started from source, down to sys.argv and __main__.
func TestHarnessBytecode(t *testing.T) {
	argv, _ := cachedHarness(t)
	fromCode := runArgv(t, argv)
	fromSource := runArgv(t, Argv(testPython))
	if fromCode != fromSource {
		t.Fatalf("bytecode harness sees %s, source harness %s", fromCode, fromSource)
	}
	if !strings.Contains(fromCode, `"argv":["-c","skillbox-worker"]`) || !strings.Contains(fromCode, `"boot":[]`) {
		t.Fatalf("harness sees %s", fromCode)
	}
	// A second start reads the file (no compilation) and gets the same.
	forgetBytecode()
	exe, _ := filepath.EvalSymlinks(testPython)
	if again := HarnessArgv(context.Background(), testPython, exe); strings.Join(again, "\x00") != strings.Join(argv, "\x00") {
		t.Fatal("the cache file gave another argv than the compilation that wrote it")
	}
}

// TestHarnessBytecodeDamaged: a damaged or foreign cache file is not used;
// the harness is compiled again and the file replaced.
func TestHarnessBytecodeDamaged(t *testing.T) {
	argv, file := cachedHarness(t)
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := filepath.EvalSymlinks(testPython)
	key, _ := bytecodeKey(exe)
	for name, damage := range map[string]func([]byte) []byte{
		"payload byte": func(b []byte) []byte { b[len(b)-10] ^= 0xff; return b },
		"truncated":    func(b []byte) []byte { return b[:len(b)-100] },
		"other key":    func(b []byte) []byte { b[len(bytecodeFormat)] ^= 1; return b },
		"other format": func(b []byte) []byte { b[0] = 'S'; return b },
	} {
		bad := damage(append([]byte(nil), good...))
		if err := os.WriteFile(file, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		if readBytecode(file, key) != "" {
			t.Errorf("%s: the damaged file was accepted", name)
		}
		forgetBytecode()
		if again := HarnessArgv(context.Background(), testPython, exe); strings.Join(again, "\x00") != strings.Join(argv, "\x00") {
			t.Errorf("%s: recompiled argv differs", name)
		}
		if b, _ := os.ReadFile(file); string(b) != string(good) {
			t.Errorf("%s: the file was not replaced by a good one", name)
		}
	}
}

// TestHarnessBytecodeMagic: code marshalled for another bytecode version
// is refused by the interpreter before anything is loaded.
func TestHarnessBytecodeMagic(t *testing.T) {
	argv, _ := cachedHarness(t)
	b, err := base64.StdEncoding.DecodeString(strings.Join(argv[7:], ""))
	if err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x55
	bad := append([]string(nil), argv[:7]...)
	for s := base64.StdEncoding.EncodeToString(b); s != ""; {
		n := min(len(s), argChunk)
		bad, s = append(bad, s[:n]), s[n:]
	}
	out, err := exec.Command(bad[0], bad[1:]...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not for this interpreter") {
		t.Fatalf("foreign magic: %v, %s", err, out)
	}
}
