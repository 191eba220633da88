package gvisor

import (
	"maps"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/internal/jail"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// Network grants (docs/EGRESS.md), as on the linux backend: the only way
// out is skillbox's egress proxy, served in this process.
//
// Each gVisor sandbox with a grant is started (runsc run) from a thread
// that has just entered a network namespace of its own, with only loopback
// up and the proxy's listener on jail.ProxyAddr; runsc runs with
// --network=host, so the sentry's sockets are host sockets of that
// namespace, and config.json names no network namespace (runsc would make
// a new, empty one). One proxy per sandbox: a cold sandbox's serves its
// one call, a session's the session's calls (jail.Running.BeginCall at
// each: audit events go to the call, limits are per call). Each start
// writes its own config.json (its proxy's variables, and the CA bundle
// with its proxy's CA bound read-only where the variables point).

// netGrant is a box's network grant.
type netGrant struct {
	// cfg is the proxies' configuration; cfg.CAFile is where the sandbox
	// sees the CA bundle (jail.PlaceTrust), also bound at over when set.
	cfg  egress.Config
	over string
	// trust is the CA bundle without a proxy's CA; notes say what it lacks.
	trust []byte
	notes []string
}

// newNetGrant returns spec's network grant, or nil without one.
func newNetGrant(spec sandbox.Spec) (*netGrant, error) {
	if len(spec.Network) == 0 && len(spec.Secrets) == 0 {
		return nil, nil
	}
	cfg, err := jail.EgressConfig(spec, nil)
	if err != nil {
		return nil, err
	}
	return &netGrant{cfg: cfg}, nil
}

// place decides where the root assembled by ops shows the CA bundle and
// makes the mount point(s) under rootfs.
func (g *netGrant) place(root jail.Root, ops []jail.MountOp, rootfs string) error {
	var note string
	g.over, g.notes = jail.PlaceTrust(root, ops, &g.cfg)
	g.trust, note = g.cfg.TrustBundle()
	if note != "" {
		g.notes = append(g.notes, note)
	}
	// CAFile is not below a bind or symlink of the root (PlaceTrust): it
	// is made in the private folder. over is a file of a bind.
	at := filepath.Join(rootfs, g.cfg.CAFile)
	if err := os.MkdirAll(filepath.Dir(at), 0o755); err != nil {
		return errdefs.Wrap(errdefs.Internal, err, "backend gvisor: CA bundle mount point")
	}
	if err := os.WriteFile(at, nil, 0o644); err != nil {
		return errdefs.Wrap(errdefs.Internal, err, "backend gvisor: CA bundle mount point")
	}
	return nil
}

// netStart is the per-start part of a sandbox with a grant: its proxy and
// the bundle folder whose config.json gives the proxy's variables and CA.
type netStart struct {
	proxy *egress.Proxy
	dir   string
}

// prepare makes the proxy of one start (audit is its sink until the
// Running says otherwise) and writes its bundle folder under b.dir, named
// after the container id.
func (g *netGrant) prepare(b *box, id string, audit func(egress.Event)) (*netStart, error) {
	cfg := g.cfg
	cfg.Audit = audit
	p, err := egress.New(cfg)
	if err != nil {
		return nil, err
	}
	ns := &netStart{proxy: p, dir: filepath.Join(b.dir, "net-"+id)}
	if err := ns.write(b, g); err != nil {
		p.Close()
		os.RemoveAll(ns.dir)
		return nil, err
	}
	return ns, nil
}

// write writes the start's CA bundle and config.json: the box's, plus the
// proxy's variables (NO_PROXY removed) and the bundle bound read-only at
// CAFile (and over).
func (ns *netStart) write(b *box, g *netGrant) error {
	if err := os.Mkdir(ns.dir, 0o700); err != nil {
		return errdefs.Wrap(errdefs.Internal, err, "backend gvisor: bundle")
	}
	ca := filepath.Join(ns.dir, "ca.pem")
	if err := os.WriteFile(ca, egress.JoinPEM(g.trust, ns.proxy.CACertPEM()), 0o444); err != nil {
		return errdefs.Wrap(errdefs.Internal, err, "backend gvisor: CA bundle")
	}
	config := b.bundle.config
	proc := *config.Process
	env := maps.Clone(b.spec.Env)
	if env == nil {
		env = map[string]string{}
	}
	delete(env, "NO_PROXY")
	delete(env, "no_proxy")
	maps.Copy(env, ns.proxy.Env(jail.ProxyAddr))
	proc.Env = b.bundle.root.Env(env)
	config.Process = &proc
	config.Mounts = append([]specs.Mount(nil), config.Mounts...)
	for _, at := range []string{g.cfg.CAFile, g.over} {
		if at != "" {
			config.Mounts = append(config.Mounts, specs.Mount{Destination: at, Type: "bind", Source: ca, Options: roBind})
		}
	}
	return writeConfig(ns.dir, config)
}
