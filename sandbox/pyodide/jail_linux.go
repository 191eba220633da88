package pyodide

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/sandbox/linux"
)

// Defence in depth (Linux). Deno's permissions are the boundary; when the
// linux backend's jail can be built on this host (root, or unprivileged
// user namespaces), every worker also runs inside one (linux.Jail): its
// own pid, mount, network, ipc, uts and cgroup namespaces, a tmpfs root
// holding only read-only binds of the Deno binary and its ELF
// dependencies, the Pyodide folder, the worker folder and Deno's cache, a
// private noexec /scratch, a /proc of the jail's processes only, the
// unprivileged uid linux.JailID (which owns nothing on the host), Landlock
// and seccomp, no host environment and an empty network namespace. A network grant is served by an egress
// proxy listening on 127.0.0.1:3128 inside that namespace; Deno gets
// --allow-net for the granted hosts and HTTP(S)_PROXY, so fetch goes
// through the proxy, which enforces the grant again on the resolved
// address (no DNS rebinding). Without the jail, workers run unjailed with
// a warning on every result, and network grants are refused.

// workerJail is the jail every worker of a box starts in (nil: none).
type workerJail struct {
	j *linux.Jail
}

// jailState says whether jails can be used on this host, and if not why.
func jailState(fake string) (ok bool, detail string) {
	if fake != "" {
		return false, fake
	}
	if err := linux.JailUsable(); err != nil {
		return false, err.Error()
	}
	return true, fmt.Sprintf("namespaces, read-only root (deno, pyodide, worker), uid %d, Landlock, seccomp, empty network namespace", linux.JailID)
}

// newWorkerJail prepares the jail for f's workers and spec's network
// grant; missing lists the jail's hardening layers this host lacks.
func newWorkerJail(f files, spec sandbox.Spec, tweak func(*egress.Config)) (w *workerJail, missing []string, err error) {
	js := linux.JailSpec{
		Program:  f.rt.Deno,
		ReadOnly: []string{f.rt.Pyodide, f.dir, filepath.Join(f.rt.Dir, "deno-dir")},
	}
	if len(spec.Network) > 0 || len(spec.Secrets) > 0 {
		cfg, err := egress.FromSpec(spec, nil)
		if err != nil {
			return nil, nil, err
		}
		// Deno is told to trust the proxy's interception CA at this path
		// (--cert), which nothing the jail mounts covers.
		cfg.CAFile = egress.DefaultCAFile
		if tweak != nil {
			tweak(&cfg)
		}
		js.Egress = &cfg
	}
	j, err := linux.NewJail(js)
	if err != nil {
		return nil, nil, err
	}
	return &workerJail{j: j}, j.Missing(), nil
}

// wrap makes cmd start in a fresh jail through start; release stops what
// the jail left on the host side (its egress proxy) once the worker is
// gone.
func (w *workerJail) wrap(ctx context.Context, cmd *exec.Cmd, start func(*exec.Cmd) error) (launch func(*exec.Cmd) error, release func()) {
	if w == nil {
		return start, func() {}
	}
	for i, kv := range cmd.Env {
		if strings.HasPrefix(kv, "HOME=") {
			cmd.Env[i] = "HOME=/scratch"
		}
	}
	cmd.Dir = ""
	launch, r := w.j.Wrap(ctx, cmd, start)
	return launch, r.Close
}
