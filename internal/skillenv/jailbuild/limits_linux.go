package jailbuild

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/cgroup"
	"github.com/skillbox-dev/skillbox/internal/skillenv"
	"github.com/skillbox-dev/skillbox/skill"
)

var buildSeq atomic.Uint64

// buildLimits are a build's cgroup limits, defaults filled in.
type buildLimits struct {
	memory int64
	pids   int
}

func limitsOf(job skillenv.Job) buildLimits {
	l := buildLimits{memory: job.MaxMemory, pids: job.MaxPids}
	if l.memory <= 0 {
		l.memory = skillenv.DefaultMaxMemory
	}
	if l.pids <= 0 {
		l.pids = skillenv.DefaultMaxPids
	}
	return l
}

// buildGroup creates the control group a build is born in, with l's memory
// and pids limits (written once pid 1 is born: cgroup.Group.Start), named
// "<pid>-build-<n>" so that cgroup's sweep removes it should this process
// die first. Without the memory or pids controller (not mounted, or not
// writable by this user) the build is refused naming the missing layer,
// as the linux backend refuses a call, unless ctx says best-effort
// (WithBestEffort): then missing lists what the build goes without, and
// noPids says the jail must fall back to RLIMIT_NPROC. The group is nil
// when neither controller is there.
func (b Builder) buildGroup(ctx context.Context, l buildLimits) (g *cgroup.Group, missing []string, noPids bool, err error) {
	h, derr := b.Cgroups, error(nil)
	if h == nil {
		h, derr = cgroup.Detect()
	}
	var need []string
	for _, c := range []string{cgroup.Memory, cgroup.Pids} {
		why := ""
		switch v, dir := 0, ""; {
		case derr != nil:
			why = derr.Error()
		default:
			if v, dir = h.Where(c); v == 0 {
				why = h.Describe(c)
			} else if unix.Access(dir, unix.W_OK) != nil {
				why = h.Describe(c) + ": not writable by this user"
			}
		}
		if why == "" {
			need = append(need, c)
			continue
		}
		if !bestEffort(ctx) {
			return nil, nil, false, errdefs.New(errdefs.Unavailable,
				"building a skill's environment: isolation layer %s is missing: %s (the build's %s limit needs it; --best-effort builds without it)", c, why, c)
		}
		missing = append(missing, fmt.Sprintf("%s (%s)", c, why))
		noPids = noPids || c == cgroup.Pids
	}
	if len(need) == 0 {
		return nil, missing, noPids, nil
	}
	name := strconv.Itoa(os.Getpid()) + "-build-" + strconv.FormatUint(buildSeq.Add(1), 10)
	g, err = h.New(name, cgroup.Limits{Memory: l.memory, Pids: l.pids}, need)
	if err != nil {
		return nil, nil, false, errdefs.Wrap(errdefs.Unavailable, err, "building a skill's environment: its control group")
	}
	return g, missing, noPids, nil
}

// limitHit names the limit a build ran into, judged by its group's
// counters (fresh when the build started), or returns nil.
func limitHit(g *cgroup.Group, l buildLimits, tail string) error {
	if g == nil {
		return nil
	}
	oom, pids := g.Counters()
	switch {
	case oom > 0:
		return errdefs.New(errdefs.Unavailable, "the build ran into its memory limit (%s, both tmpfs included): the kernel's OOM killer stopped it%s", skill.FormatSize(l.memory), tail)
	case pids > 0:
		return errdefs.New(errdefs.Unavailable, "the build ran into its pids limit (%d processes and threads): process creation was refused%s", l.pids, tail)
	}
	return nil
}

// startError is the error of a build whose jail did not start.
func startError(err error, l buildLimits) error {
	if errors.Is(err, cgroup.ErrOverLimit) {
		return errdefs.New(errdefs.Unavailable, "the build's jail already used more than its memory limit (%s) before the build started", skill.FormatSize(l.memory))
	}
	return errdefs.Wrap(errdefs.Unavailable, err, "start the environment build's jail")
}
