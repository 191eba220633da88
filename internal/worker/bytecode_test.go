//go:build linux

package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// argvSkill reports what the harness left in __main__ and sys.argv, which
// must be what `-c Harness skillbox-worker` gives, bytecode or not.
const argvSkill = `
import os, sys
from skillware.core.base_skill import BaseSkill

class Argv(BaseSkill):
    @property
    def manifest(self):
        return {"name": "argv"}

    def execute(self, params):
        main = sys.modules["__main__"]
        try:
            os.fstat(5)
            fd_open = True
        except OSError:
            fd_open = False
        return {"argv": sys.argv, "boot": [n for n in vars(main) if "boot" in n],
                "has_main": hasattr(main, "main"), "file": getattr(main, "__file__", None),
                "code_fd_open": fd_open}
`

// forgetBytecode drops the in-memory answers, so the next HarnessCommand
// reads the cache folder again.
func forgetBytecode() {
	bytecodeMu.Lock()
	clear(bytecodeCode)
	bytecodeMu.Unlock()
}

func cachedHarness(t *testing.T) (argv []string, code []byte, file string) {
	t.Helper()
	needPython(t)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	forgetBytecode()
	t.Cleanup(forgetBytecode)
	argv, f := HarnessCommand(context.Background(), testPython, testExecutable(t))
	if f == nil || len(argv) != 7 || argv[5] != bootstrap {
		t.Fatalf("no bytecode: %q, %v", argv[:min(len(argv), 6)], f)
	}
	code, err := io.ReadAll(f)
	f.Close()
	if err != nil || len(code) < 5 {
		t.Fatalf("code file: %d bytes, %v", len(code), err)
	}
	files, _ := filepath.Glob(filepath.Join(os.Getenv("XDG_CACHE_HOME"), "skillbox", "harness", "*.bin"))
	if len(files) != 1 {
		t.Fatalf("cache files: %q", files)
	}
	fi, err := os.Stat(files[0])
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cache file %v, %v: want mode 0600", fi.Mode(), err)
	}
	return argv, code, files[0]
}

func testExecutable(t *testing.T) string {
	exe, err := filepath.EvalSymlinks(testPython)
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// runArgv starts a worker with argv (and code at CodeFD when not nil) and
// returns what argvSkill's call reports.
func runArgv(t *testing.T, argv []string, code []byte) string {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}
	cmd.Dir = t.TempDir()
	if code != nil {
		f, err := sealedFile("test", code)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd.ExtraFiles = []*os.File{f}
	}
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
// behaves as the one started from source, down to sys.argv and __main__,
// and its descriptor is closed before the skill runs.
func TestHarnessBytecode(t *testing.T) {
	argv, code, _ := cachedHarness(t)
	fromCode := runArgv(t, argv, code)
	fromSource := runArgv(t, Argv(testPython), nil)
	if fromCode != fromSource {
		t.Fatalf("bytecode harness sees %s, source harness %s", fromCode, fromSource)
	}
	if !strings.Contains(fromCode, `"argv":["-c","skillbox-worker"]`) || !strings.Contains(fromCode, `"boot":[]`) || !strings.Contains(fromCode, `"code_fd_open":false`) {
		t.Fatalf("harness sees %s", fromCode)
	}
	// A second start reads the file (no compilation) and gets the same.
	forgetBytecode()
	if again := harnessBytecode(context.Background(), testExecutable(t)); !bytes.Equal(again, code) {
		t.Fatal("the cache file gave other bytecode than the compilation that wrote it")
	}
}

// TestHarnessBytecodeDamaged: a damaged or foreign cache file is not used;
// the harness is compiled again and the file replaced.
func TestHarnessBytecodeDamaged(t *testing.T) {
	_, code, file := cachedHarness(t)
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	exe := testExecutable(t)
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
		if readBytecode(file, key) != nil {
			t.Errorf("%s: the damaged file was accepted", name)
		}
		forgetBytecode()
		if again := harnessBytecode(context.Background(), exe); !bytes.Equal(again, code) {
			t.Errorf("%s: recompiled bytecode differs", name)
		}
		if b, _ := os.ReadFile(file); !bytes.Equal(b, good) {
			t.Errorf("%s: the file was not replaced by a good one", name)
		}
	}
}

// TestHarnessBytecodeMagic: code marshalled for another bytecode version
// is refused by the interpreter before anything is loaded.
func TestHarnessBytecodeMagic(t *testing.T) {
	argv, code, _ := cachedHarness(t)
	bad := append([]byte(nil), code...)
	bad[0] ^= 0x55
	f, err := sealedFile("test", bad)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.ExtraFiles = []*os.File{nil, nil, f}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not for this interpreter") {
		t.Fatalf("foreign magic: %v, %s", err, out)
	}
}

// TestSealedFile: the code file cannot be changed through any descriptor.
func TestSealedFile(t *testing.T) {
	f, err := sealedFile("test", []byte("code"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("x"), 0); err == nil {
		t.Error("write to the sealed file succeeded")
	}
	g, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(int(f.Fd())), os.O_RDWR, 0)
	if err == nil {
		_, werr := g.WriteAt([]byte("x"), 0)
		terr := g.Truncate(0)
		g.Close()
		if werr == nil || terr == nil {
			t.Errorf("reopened for writing: write %v, truncate %v", werr, terr)
		}
	}
	if b, _ := io.ReadAll(f); string(b) != "code" {
		t.Errorf("content %q", b)
	}
}

// TestHarnessBytecodeNoCache: without a cache folder that can be written,
// the harness starts from source, and no interpreter is run to compile it.
func TestHarnessBytecodeNoCache(t *testing.T) {
	needPython(t)
	t.Setenv("XDG_CACHE_HOME", "/dev/null/cache")
	forgetBytecode()
	t.Cleanup(forgetBytecode)
	argv, code := HarnessCommand(context.Background(), testPython, testExecutable(t))
	if code != nil || strings.Join(argv, "\x00") != strings.Join(Argv(testPython), "\x00") {
		t.Fatalf("got bytecode (%v) without a cache folder", code)
	}
}
