package cli

import (
	"time"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/lockfile"
	"github.com/skillbox-dev/skillbox/internal/secrets"
	"github.com/skillbox-dev/skillbox/skill"
)

// grantFlags are the operator's grants and choices that `run` and `serve`
// share, so both take exactly the same flags.
type grantFlags struct {
	backend, timeout, memory                     string
	trust, bestEffort, buildImages               bool
	allowNet, allowEnv, allowRead, egressResolve listFlag
	secrets                                      secretFlags
}

// register adds the flags to fs; who names the grantee in the help ("the
// skill" for run, "skills" for serve). --policy sets c.policyPath.
func (g *grantFlags) register(c *cmdContext, fs *flagSet, who string) {
	// run's grants are for its one skill, and given as they are to a skill
	// whose manifest has no permissions block (CallOptions.GrantUndeclared);
	// serve's are for every skill, and give only what a skill requests.
	requested := "if requested by " + who + " (a skill without a permissions block gets it only from its entry in the policy file)"
	if who == "the skill" {
		requested = "if requested by the skill (or as given, if its manifest has no permissions block)"
	}
	fs.StringVar(&g.backend, "backend", "auto", "backend `NAME`: auto (strongest available), linux, pyodide, gvisor (by name only), process")
	fs.BoolVar(&g.trust, "trust-remote-code", false, "let "+who+" from external roots run")
	fs.StringVar(&g.timeout, "timeout", "", "wall-clock limit per call, e.g. 2s or 500ms")
	fs.StringVar(&g.memory, "memory", "", "memory limit per call, e.g. 256MiB, 1GiB, 512M, 64k")
	fs.Var(&g.allowNet, "allow-net", "grant network access to `HOST[:PORT]`, "+requested+" (repeatable)")
	fs.Var(&g.allowEnv, "allow-env", "grant the environment variable `NAME`, "+requested+" (repeatable)")
	fs.Var(&g.allowRead, "allow-read", "let "+who+" read the host `PATH` (read-only; repeatable)")
	fs.Var(&g.egressResolve, "egress-resolve", "send a granted host name to a fixed address, `HOST=IP`, granting that address (repeatable)")
	fs.StringVar(&c.policyPath, "policy", "", "policy `FILE` (default $XDG_CONFIG_HOME/skillbox/policy.yaml if it exists)")
	fs.StringVar(&c.caFile, "ca-file", "", "also trust the CA certificates of the PEM `FILE` in sandboxes granted network (added to the policy file's ca_file)")
	c.registerBackendSettings(fs)
	g.secrets.register(fs)
	fs.BoolVar(&g.bestEffort, "best-effort", false, "run without the isolation layers this host lacks, keeping the others (each missing one is reported on every call)")
	fs.BoolVar(&g.buildImages, "build-images", false, "build the image of a container skill with a Dockerfile on its first call when none is built for its version, as 'skillbox image build SKILL' does (buildah and runc; no network unless the policy file's skills.ID.build_net grants hosts; progress on stderr); default: such a call is unavailable until built (policy file: build_images: true)")
}

// options checks the flags and turns them into call options, plus the
// provider that granted variables get their values from.
func (g *grantFlags) options(c *cmdContext) (skillbox.CallOptions, secrets.Provider, error) {
	opts := skillbox.CallOptions{
		Backend: g.backend, TrustRemoteCode: g.trust, AllowNet: g.allowNet, AllowEnv: g.allowEnv, BestEffort: g.bestEffort,
		BuildImages: g.buildImages,
	}
	var err error
	if opts.AllowRead, err = absPaths(g.allowRead, "--allow-read"); err != nil {
		return opts, nil, err
	}
	if opts.EgressResolve, err = resolveFlags(g.egressResolve); err != nil {
		return opts, nil, err
	}
	if g.timeout != "" {
		d, err := time.ParseDuration(g.timeout)
		if err != nil || d <= 0 {
			return opts, nil, errdefs.New(errdefs.Invalid, "--timeout %q: want a positive duration such as 2s or 500ms", g.timeout)
		}
		opts.Timeout = d
	}
	if g.memory != "" {
		n, err := skill.ParseSize(g.memory)
		if err != nil || n <= 0 {
			return opts, nil, errdefs.New(errdefs.Invalid, "--memory %q: want a positive size such as 256MiB, 1GiB, 512M or 64k", g.memory)
		}
		opts.Memory = n
	}
	provider, err := g.secrets.provider(c)
	if err != nil {
		return opts, nil, err
	}
	return opts, provider, nil
}

// lockFlags are --locked and --lockfile, shared by run and serve.
type lockFlags struct {
	locked bool
	path   string
}

// register adds the flags; what says what is refused on drift.
func (l *lockFlags) register(fs *flagSet, what string) {
	fs.BoolVar(&l.locked, "locked", false, what)
	fs.StringVar(&l.path, "lockfile", "", "lockfile `FILE` for --locked (default ./"+lockfile.Name+")")
}

// load returns the lockfile --locked asks for, or nil without --locked.
func (l *lockFlags) load() (*skillbox.Lock, error) {
	if l.path != "" && !l.locked {
		return nil, errdefs.New(errdefs.Invalid, "--lockfile is used only with --locked")
	}
	if !l.locked {
		return nil, nil
	}
	if l.path == "" {
		l.path = lockfile.Name
	}
	return skillbox.LoadLock(l.path)
}
