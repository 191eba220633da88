package linux

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/backend"
	"github.com/skillbox-dev/skillbox/internal/cgroup"
	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/internal/jail"
	"github.com/skillbox-dev/skillbox/internal/worker"
)

var jailSeq atomic.Uint64

// jailProc is one running jail: a worker process that is pid 1 of its own
// pid namespace (so killing it kills everything in the jail), in its own
// cgroup.
type jailProc struct {
	*worker.Process
	cg *cgroup.Group
	// run is the jail's host side: the egress proxy of a network grant.
	run *jail.Running
	// peak, when not nil, meters the jail's peak memory since it started
	// (a spare's, opened before its call); destroy closes it.
	peak *cgroup.PeakMeter
}

// startJail creates the jail's cgroup and starts the harness in a fresh
// jail born in it (internal/jail), waiting until the harness was exec'd
// (or the init stage reports why it could not be). The harness gets the
// protocol pipes, or the zygote control socket when zygote is set; its
// stdout and stderr are captured in stdioCap bytes each; lasting says the
// jail outlives the call that starts it, if any. The jail lives until
// destroy (or until ctx is done).
func (b *box) startJail(ctx context.Context, zygote, lasting bool, stdioCap int64) (*jailProc, error) {
	j := &jailProc{}
	if b.cgHost != nil && len(b.controllers) > 0 {
		name := strconv.Itoa(os.Getpid()) + "-" + strconv.FormatUint(jailSeq.Add(1), 10)
		cg, err := b.cgHost.New(name, b.cgLimits(), b.controllers)
		if err != nil {
			return nil, errdefs.Wrap(errdefs.Internal, err, "jail cgroup")
		}
		j.cg = cg
	}
	// Decisions outside a call go to the sandbox's own sink (given to
	// Open), whoever started the jail, when it is lasting: a zygote, session
	// or spare jail outlives the call that started it (or has no call at
	// all), and Running.BeginCall points it at each call's sink. A cold
	// jail lives for the one call it was started in.
	outside := b.outsideAudit
	if !lasting {
		outside = egress.AuditFrom(ctx)
	}
	launch, run := b.jail.Launch(ctx, jail.LaunchOptions{Cgroup: j.cg, Audit: outside})
	var argv []string
	var code *os.File
	if b.container != nil {
		// The image's python is never run on the host (to compile the
		// harness): it starts from source.
		argv = worker.Argv(b.program())
	} else {
		argv, code = worker.HarnessCommand(ctx, b.interp.Command, b.interp.Executable)
	}
	cmd := &exec.Cmd{Path: argv[0], Args: argv}
	if code != nil {
		cmd.ExtraFiles = []*os.File{code} // worker.CodeFD
	}
	p, err := worker.StartWith(ctx, cmd, stdioCap, worker.StartOptions{Launch: launch, Zygote: zygote})
	if code != nil {
		code.Close()
	}
	if err != nil {
		run.Close()
		if j.cg != nil {
			lerr := b.startLimit(j.cg, err)
			j.cg.Remove()
			if lerr != err {
				return nil, lerr
			}
		}
		return nil, errdefs.Wrap(errdefs.Internal, err, "start jail")
	}
	j.Process, j.run = p, run
	return j, nil
}

// loadFailed kills the jail, whose worker failed before its call, and
// returns err carrying what the skill printed until then.
func (j *jailProc) loadFailed(ctx context.Context, err error) error {
	j.Kill()
	return backend.LoadFailed(ctx, err, j.WaitOutput, j.Stdout, j.Stderr)
}

// destroy kills the jail, waits for it, stops its egress proxy and removes
// its cgroup.
func (j *jailProc) destroy() {
	j.Close()
	j.peak.Close()
	j.run.Close()
	if j.cg != nil {
		j.cg.Remove()
	}
}

// program is the interpreter the jail runs: the image's for a skill in a
// container, else the host's.
func (b *box) program() string {
	if b.container != nil {
		return b.container.Root.Program()
	}
	return b.interp.Command
}
