//go:build unix

package pyodide

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/worker"
)

// workerScript is the Deno side of a worker; bootstrapPy, run once while
// the snapshot is made, imports worker.Harness and defines what the script
// calls.
var (
	//go:embed worker.mjs
	workerScript string
	//go:embed bootstrap.py
	bootstrapPy string
	//go:embed restore.mjs
	restoreScript string
)

// workerKey identifies the worker files and the snapshot made from them:
// any change of Deno, Pyodide, script, bootstrap or harness means another
// folder and a new snapshot.
func workerKey() string {
	h := sha256.New()
	for _, s := range []string{DenoVersion, PyodideVersion, workerScript, restoreScript, bootstrapPy, worker.Harness()} {
		fmt.Fprintf(h, "%d\n%s", len(s), s)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// files is an install plus a prepared worker folder.
type files struct {
	rt  Runtime
	dir string // worker folder: worker.mjs, restore.mjs, bootstrap.py, harness.py, snapshot.bin
}

var snapshotMu sync.Mutex

// prepare returns the worker folder for rt, writing the scripts and making
// the memory snapshot with the same Deno on first use.
func prepare(ctx context.Context, rt Runtime) (files, error) {
	f := files{rt: rt, dir: filepath.Join(rt.Dir, "worker-"+workerKey())}
	if err := noWebCache(rt); err != nil {
		return f, err
	}
	if _, err := os.Stat(filepath.Join(f.dir, "snapshot.bin")); err == nil {
		// The jailed worker (a jail id, not the owner) reads the folder.
		_ = os.Chmod(f.dir, 0o755)
		return f, nil
	}
	snapshotMu.Lock()
	defer snapshotMu.Unlock()
	if _, err := os.Stat(filepath.Join(f.dir, "snapshot.bin")); err == nil {
		return f, nil
	}
	tmp, err := os.MkdirTemp(rt.Dir, ".worker-*")
	if err != nil {
		return f, errdefs.Wrap(errdefs.Internal, err, "pyodide worker folder")
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil { // read by jailed workers (jail ids)
		return f, errdefs.Wrap(errdefs.Internal, err, "pyodide worker folder")
	}
	for name, src := range map[string]string{"worker.mjs": workerScript, "restore.mjs": restoreScript, "bootstrap.py": bootstrapPy, "harness.py": worker.Harness()} {
		if err := os.WriteFile(filepath.Join(tmp, name), []byte(src), 0o444); err != nil {
			return f, errdefs.Wrap(errdefs.Internal, err, "write pyodide worker")
		}
	}
	out := filepath.Join(tmp, "snapshot.bin")
	// Only skillbox's own code runs here; it may write the snapshot file.
	args := denoArgs(rt, tmp, []string{"--allow-write=" + out}, nil)
	args = append(args, "snapshot", out)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, rt.Deno, args...)
	cmd.Env = denoEnv(rt)
	cmd.Dir = tmp
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return f, errdefs.New(errdefs.Unavailable, "backend pyodide: making the memory snapshot failed: %v: %s", err, lastLines(stderr.String(), 8))
	}
	if err := os.Chmod(out, 0o444); err != nil {
		return f, errdefs.Wrap(errdefs.Internal, err, "snapshot")
	}
	if err := os.Rename(tmp, f.dir); err != nil {
		if _, serr := os.Stat(filepath.Join(f.dir, "snapshot.bin")); serr == nil {
			return f, nil // another process made it first
		}
		return f, errdefs.Wrap(errdefs.Internal, err, "move worker folder into place")
	}
	pruneWorkers(rt.Dir, f.dir)
	return f, nil
}

// noWebCache keeps Deno's Cache API (caches.open) from storing anything:
// Deno keeps it under DENO_DIR/location_data whatever the permissions,
// where every worker of every skill, and later calls, would find it. A
// read-only file in its place makes caches.open fail.
func noWebCache(rt Runtime) error {
	p := filepath.Join(rt.Dir, "deno-dir", "location_data")
	if st, err := os.Lstat(p); err == nil && st.Mode().IsRegular() {
		return nil
	}
	if err := os.RemoveAll(p); err != nil {
		return errdefs.Wrap(errdefs.Internal, err, "pyodide: remove Deno's web cache")
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return errdefs.Wrap(errdefs.Internal, err, "pyodide: deno folder")
	}
	if err := os.WriteFile(p, nil, 0o444); err != nil {
		return errdefs.Wrap(errdefs.Internal, err, "pyodide: block Deno's web cache")
	}
	return nil
}

// pruneWorkers removes worker folders of other script versions that have
// not changed for a day (a long-running older skillbox may still use a
// recent one).
func pruneWorkers(dir, keep string) {
	old, _ := filepath.Glob(filepath.Join(dir, "worker-*"))
	for _, d := range old {
		if st, err := os.Stat(d); err == nil && d != keep && time.Since(st.ModTime()) > 24*time.Hour {
			os.RemoveAll(d)
		}
	}
}

// denoMallocTunables is the GLIBC_TUNABLES Deno starts with. By default
// malloc's sliding threshold keeps large freed blocks (a Web Worker's
// buffers, the ~2.5 MiB standard library, V8's own) in its heaps for the
// next one; a fixed threshold maps every block of 1 MiB or more on its own
// and unmaps it when freed. An idle host holds ~200 MiB with it and
// ~285 without, back-to-back calls take the same time either way
// (docs/PERFORMANCE.md, "Back-to-back single-use calls"; it was ~30%
// slower while each worker got a 30 MiB copy of the snapshot).
const denoMallocTunables = "glibc.malloc.mmap_threshold=1048576"

// denoEnv is a worker's whole environment: nothing from the host. Deno
// keeps its own caches (V8 code cache) in a private folder of the install;
// scripts cannot reach it (no write or env permission).
func denoEnv(rt Runtime) []string {
	return []string{
		"GLIBC_TUNABLES=" + denoMallocTunables,
		"DENO_DIR=" + filepath.Join(rt.Dir, "deno-dir"),
		"HOME=" + filepath.Join(rt.Dir, "deno-dir"),
		"NO_COLOR=1",
		"DENO_NO_UPDATE_CHECK=1",
		"DENO_NO_PROMPT=1",
		"LANG=C.UTF-8",
	}
}

// denoArgs is the hardened `deno run` command line for the worker script in
// dir: no remote, npm or data imports, no config or lock file, no prompts;
// read access to the Pyodide folder and dir only (plus extraRead);
// everything else denied. allow lists extra --allow-* flags (snapshot
// making writes one file; calls read and write their protocol
// descriptors).
func denoArgs(rt Runtime, dir string, allow []string, v8 []string) []string {
	read := []string{rt.Pyodide, dir}
	args := []string{"run",
		"--no-remote", "--no-npm", "--no-config", "--no-lock", "--no-prompt", "--no-check",
		"--cached-only",
		"--allow-read=" + strings.Join(read, ","),
	}
	hasWrite := false
	for _, a := range allow {
		if strings.HasPrefix(a, "--allow-read=") {
			args[len(args)-1] += "," + strings.TrimPrefix(a, "--allow-read=")
			continue
		}
		if strings.HasPrefix(a, "--allow-write=") {
			hasWrite = true
		}
		args = append(args, a)
	}
	if !hasWrite {
		args = append(args, "--deny-write")
	}
	if !slices.ContainsFunc(allow, func(a string) bool { return strings.HasPrefix(a, "--allow-net=") }) {
		args = append(args, "--deny-net")
	}
	args = append(args, "--deny-env", "--deny-run", "--deny-sys", "--deny-ffi", "--deny-import")
	if len(v8) > 0 {
		args = append(args, "--v8-flags="+strings.Join(v8, ","))
	}
	return append(args, filepath.Join(dir, "worker.mjs"), rt.Pyodide, dir)
}
