package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/skillbox-dev/skillbox/audit"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/lockfile"
	"github.com/skillbox-dev/skillbox/policy"
	"github.com/skillbox-dev/skillbox/skill"
)

func cmdLock(ctx context.Context, c *cmdContext, args []string) error {
	fs := newFlags(c, "lock", "[SKILL...] [--lockfile FILE] [--policy FILE] [--allow-env NAME] [--allow-net HOST] [--allow-read PATH] [--timeout D] [--memory SIZE]")
	var (
		lockPath, timeout, memory     string
		allowNet, allowEnv, allowRead listFlag
	)
	fs.StringVar(&lockPath, "lockfile", lockfile.Name, "lockfile `FILE` to write")
	fs.StringVar(&c.policyPath, "policy", "", "policy `FILE` whose standing grants are locked (default $XDG_CONFIG_HOME/skillbox/policy.yaml if it exists)")
	fs.Var(&allowNet, "allow-net", "also lock this network grant `HOST[:PORT]` (repeatable)")
	fs.Var(&allowEnv, "allow-env", "also lock this variable grant `NAME` (repeatable)")
	fs.Var(&allowRead, "allow-read", "also lock this host read grant `PATH` (repeatable)")
	fs.StringVar(&timeout, "timeout", "", "lock this timeout")
	fs.StringVar(&memory, "memory", "", "lock this memory limit")
	jsonOut := fs.Bool("json", false, "print JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	// Locking records; trust is checked on every run. Flags given with
	// named skills are for those skills, as run's are for its one: a skill
	// without a permissions block gets them as given. Locking every skill
	// treats them as serve does.
	g := policy.Grants{Net: allowNet, Env: allowEnv, TrustRemoteCode: true, GrantUndeclared: len(pos) > 0}
	if g.Read, err = absPaths(allowRead, "--allow-read"); err != nil {
		return err
	}
	if timeout != "" {
		if g.Timeout, err = time.ParseDuration(timeout); err != nil || g.Timeout <= 0 {
			return errdefs.New(errdefs.Invalid, "--timeout %q: want a positive duration", timeout)
		}
	}
	if memory != "" {
		if g.Memory, err = skill.ParseSize(memory); err != nil || g.Memory <= 0 {
			return errdefs.New(errdefs.Invalid, "--memory %q: want a positive size", memory)
		}
	}
	if g.Policy, err = c.policy(); err != nil {
		return err
	}
	rt, closeRT, err := c.runtime(false)
	if err != nil {
		return err
	}
	defer closeRT()

	var skills []*skill.Skill
	lock := lockfile.New(lockPath)
	if len(pos) == 0 {
		var errs []error
		skills, errs = rt.List()
		for _, e := range errs {
			fmt.Fprintf(c.stderr, "skillbox: warning: not locked: %s\n", oneLine(e.Error()))
		}
	} else {
		if old, err := lockfile.Load(lockPath); err == nil {
			lock = old // update the named entries, keep the others
		} else if errdefs.KindOf(err) != errdefs.NotFound {
			return err
		}
		for _, ref := range pos {
			s, err := rt.Resolve(ref)
			if err != nil {
				return err
			}
			skills = append(skills, s)
		}
	}
	// Values do not matter for a lock: every granted name counts as set.
	anyValue := func(string) (string, bool) { return "", true }
	type locked struct {
		ID string `json:"id"`
		lockfile.Entry
	}
	var out []locked
	for _, s := range skills {
		d, err := policy.Decide(s, g, anyValue)
		if err != nil {
			if len(pos) == 0 {
				// Locking everything: a skill that would be denied is left out
				// (and so refused under --locked), not a reason to lock nothing.
				fmt.Fprintf(c.stderr, "skillbox: warning: not locked: %s: %s\n", s.ID, oneLine(err.Error()))
				continue
			}
			return fmt.Errorf("lock %s: %w", s.ID, err)
		}
		e := lockfile.Entry{Version: s.Bundle.Manifest.Version, Digest: s.Digest, Tier: string(s.Tier), Grants: lockfile.GrantsOf(d)}
		if len(s.Bundle.Manifest.Requirements) > 0 {
			// The environment's resolved set (built now if it is not):
			// another resolution is a drift under --locked.
			st, err := rt.BuildEnvironment(ctx, s.Dir, "")
			switch {
			case err != nil && len(pos) > 0:
				return fmt.Errorf("lock %s: %w", s.ID, err)
			case err != nil:
				fmt.Fprintf(c.stderr, "skillbox: warning: %s locked without its environment's resolved set: %s\n", s.ID, oneLine(err.Error()))
			default:
				e.Environment = st.Locked
			}
		}
		if ct := d.Spec.Container; ct != nil && ct.Digest != "" {
			// The image the trust store pinned: the lock pins the same.
			ref := ct.Image
			if ref == "" {
				ref = "dockerfile:" + ct.Dockerfile
			}
			e.Image = &lockfile.Image{Ref: ref, Digest: ct.Digest}
		} else if pin, err := c.pinImage(ctx, s); err != nil {
			if len(pos) == 0 {
				fmt.Fprintf(c.stderr, "skillbox: warning: not locked: %s: %s\n", s.ID, oneLine(err.Error()))
				continue
			}
			return fmt.Errorf("lock %s: %w", s.ID, err)
		} else if pin != nil {
			e.Image = &lockfile.Image{Ref: pin.Ref, Digest: pin.Digest}
		}
		lock.Set(s.ID, e)
		out = append(out, locked{s.ID, lock.Skills[s.ID]})
	}
	if err := lock.Save(); err != nil {
		return err
	}
	for _, l := range out {
		if err := c.record(audit.Record{Event: audit.EventLock, Skill: l.ID, Version: l.Version, Digest: l.Digest, Tier: l.Tier, Detail: lockPath}); err != nil {
			return err
		}
	}
	if *jsonOut {
		if out == nil {
			out = []locked{}
		}
		return writeJSON(c.stdout, map[string]any{"ok": true, "lockfile": lockPath, "locked": out}, false)
	}
	for _, l := range out {
		fmt.Fprintf(c.stdout, "locked %s %s %s\n", l.ID, l.Version, l.Digest)
	}
	fmt.Fprintf(c.stdout, "wrote %s (%d skills)\n", lockPath, len(lock.Skills))
	return nil
}
