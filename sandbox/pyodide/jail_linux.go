package pyodide

import (
	"context"
	"crypto/x509"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/skillbox-dev/skillbox/internal/cgroup"
	"github.com/skillbox-dev/skillbox/internal/jail"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// Defence in depth (Linux). Deno's permissions are the boundary; when a
// jail can be built on this host (root, or unprivileged user namespaces),
// every worker also runs inside one (internal/jail, the linux backend's
// jail with a root of its own): its own pid, mount, network, ipc, uts and
// cgroup namespaces, a tmpfs root holding only read-only binds of the Deno
// binary and its ELF dependencies, the Pyodide folder, the worker folder
// and Deno's cache, a private noexec /scratch, a /proc of the jail's
// processes only, an unprivileged uid of its own (jail.NewID: it owns nothing on the
// host), Landlock and seccomp, no host environment and an empty network
// namespace. A network grant is served by an egress proxy listening on
// jail.ProxyAddr inside that namespace; Deno gets --allow-net for the
// granted hosts and HTTP(S)_PROXY, so fetch goes through the proxy, which
// enforces the grant again on the resolved address (no DNS rebinding).
// Without the jail, workers run unjailed with a warning on every result,
// and network grants are refused.

// workerJail is the jail every worker of a box starts in (nil: none).
type workerJail struct {
	j *jail.Jail
}

// jailState says whether jails can be used on this host, and if not why;
// noJail, when set, is why not regardless.
func jailState(noJail string) (ok bool, detail string) {
	if noJail != "" {
		return false, noJail
	}
	if err := jail.Usable(); err != nil {
		return false, err.Error()
	}
	return true, fmt.Sprintf("namespaces, read-only root (deno, pyodide, worker), a uid of its own from %d up, Landlock, seccomp, empty network namespace", jail.ID)
}

// newWorkerJail prepares the jail for f's workers and spec's network
// grant, whose intercepted upstreams roots verify (nil: the host's roots);
// missing lists the jail's hardening layers this host lacks.
func newWorkerJail(f files, spec sandbox.Spec, roots *x509.CertPool) (w *workerJail, missing []string, err error) {
	env := denoEnv(f.rt)
	for i, kv := range env {
		if strings.HasPrefix(kv, "HOME=") {
			env[i] = "HOME=" + jail.ScratchDir
		}
	}
	js := jail.Spec{
		Root: jail.Binary{
			Path:     f.rt.Deno,
			ReadOnly: []string{f.rt.Pyodide, f.dir, filepath.Join(f.rt.Dir, "deno-dir")},
			Environ:  env,
		},
		OwnFDs: true,
	}
	if len(spec.Network) > 0 || len(spec.Secrets) > 0 {
		cfg, err := jail.EgressConfig(spec, nil)
		if err != nil {
			return nil, nil, err
		}
		// The jail shows its CA bundle (the host's, the operator's
		// ca_file, the interception CA) at jail.CAFile; Deno is told to
		// trust it (--cert, box.start).
		cfg.UpstreamRootCAs = roots
		js.Egress = &cfg
	}
	missing = jail.BestEffort(&js)
	j, err := jail.New(js)
	if err != nil {
		return nil, nil, err
	}
	return &workerJail{j: j}, missing, nil
}

// certFile is where the workers' jail shows its CA bundle: "" without a
// network grant (or a jail).
func (w *workerJail) certFile() string {
	if w == nil {
		return ""
	}
	return w.j.CAFile()
}

// trustNotes says what that bundle lacks (jail.TrustNotes).
func (w *workerJail) trustNotes() []string {
	if w == nil {
		return nil
	}
	return w.j.TrustNotes()
}

// wrap makes cmd start in a fresh jail born in cg; release stops what the
// jail left on the host side (its egress proxy) once the worker is gone.
// Without a jail, cmd starts in cg on the host.
func (w *workerJail) wrap(ctx context.Context, cmd *exec.Cmd, cg *workerGroup) (launch func(*exec.Cmd) error, release func()) {
	if w == nil {
		return cg.launch, func() {}
	}
	var g *cgroup.Group
	if cg != nil {
		g = cg.g
	}
	launch, r := w.j.Launch(ctx, jail.LaunchOptions{Cgroup: g})
	return launch, r.Close
}
