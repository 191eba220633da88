package cli

import (
	"os"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/audit"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/userdir"
	"github.com/skillbox-dev/skillbox/skill"

	_ "github.com/skillbox-dev/skillbox/sandbox/all" // register every backend
)

// cacheDir is $XDG_CACHE_HOME/skillbox or ~/.cache/skillbox, read from the
// CLI's environment (internal/userdir).
func (c *cmdContext) cacheDir() (string, error) {
	dir, err := userdir.Cache(c.env.Getenv)
	if err != nil {
		return "", errdefs.Wrap(errdefs.Unavailable, err, "cache folder")
	}
	return dir, nil
}

// roots are the default skill roots, found as Skillware finds them
// (.skillware.yaml, SKILLWARE_SKILL_PATH, ./skills and its parents, the
// bundled examples) from the CLI's environment.
func (c *cmdContext) roots() (*skill.FoundRoots, error) {
	cache, err := c.cacheDir()
	if err != nil {
		return nil, err
	}
	bundledRoot, err := skillbox.BundledRoot(cache)
	if err != nil {
		return nil, errdefs.Wrap(errdefs.Internal, err, "bundled skills")
	}
	cwd, err := os.Getwd()
	if err != nil {
		return nil, errdefs.Wrap(errdefs.Internal, err, "working directory")
	}
	return skill.FindRoots(skill.RootsEnv{Getenv: c.env.Getenv, Cwd: cwd, Bundled: bundledRoot})
}

// runtime opens a Runtime over the default roots; withAudit (a runtime that
// will run calls) also opens the audit log and applies the policy file and
// the trust store. extra options come last and win. The caller closes
// everything with the returned func.
func (c *cmdContext) runtime(withAudit bool, extra ...skillbox.Option) (*skillbox.Runtime, func(), error) {
	roots, err := c.roots()
	if err != nil {
		return nil, nil, err
	}
	cache, err := c.cacheDir()
	if err != nil {
		return nil, nil, err
	}
	opts := []skillbox.Option{skillbox.WithFoundRoots(roots), skillbox.WithLookupEnv(c.env.LookupEnv), skillbox.WithCacheDir(cache), c.envProgress()}
	var log *audit.Log
	if withAudit {
		pol, err := c.policy()
		if err != nil {
			return nil, nil, err
		}
		opts = append(opts, skillbox.WithPolicy(pol), skillbox.WithTrust(c.trustGate()))
		log, err = audit.Open(audit.DefaultPath(c.env.Getenv))
		if err != nil {
			return nil, nil, errdefs.Wrap(errdefs.Internal, err, "open audit log")
		}
		opts = append(opts, skillbox.WithAudit(log))
	} else if pol, err := c.policy(); err == nil {
		// Environments follow the policy file (sdists) here too, so that
		// `env build`, `lock` and `trust` build what calls use. A policy
		// that does not load leaves the default (wheels only); run and
		// serve report it.
		opts = append(opts, skillbox.WithEnvPolicy(pol))
	}
	opts = append(opts, extra...)
	rt, err := skillbox.New(opts...)
	if err != nil {
		log.Close()
		return nil, nil, err
	}
	return rt, func() { rt.Close(); log.Close() }, nil
}

// resolve opens a Runtime (without the audit log) and resolves ref; the
// returned func closes the Runtime.
func (c *cmdContext) resolve(ref string) (*skill.Skill, func(), error) {
	rt, closeRT, err := c.runtime(false)
	if err != nil {
		return nil, nil, err
	}
	s, err := rt.Resolve(ref)
	if err != nil {
		closeRT()
		return nil, nil, err
	}
	return s, closeRT, nil
}
