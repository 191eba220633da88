package linux

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/backend"
	"github.com/skillbox-dev/skillbox/internal/cgroup"
	"github.com/skillbox-dev/skillbox/internal/jail"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// measureScript measures an untrusted environment's per-call cost.
//
//go:embed measure.py
var measureScript string

// measureRuns is how many fresh interpreters a measurement runs (their
// median is the figure), and measureTimeout bounds them all.
const (
	measureRuns    = 3
	measureTimeout = 2 * time.Minute
)

// MeasureEnvironment implements sandbox.EnvironmentMeasurer: it opens the
// skill's sandbox for one call, with nothing granted, and runs measure.py
// with the environment's base interpreter in a fresh jail of it (its own cgroup, the
// call's limits): each of measureRuns fresh interpreters processes the
// environment's site and imports the third-party packages the skill's
// files import, as a call's own process does when the environment is not
// trusted; the skill's own code is parsed, never run.
func (d *Driver) MeasureEnvironment(ctx context.Context, spec sandbox.Spec) (*sandbox.ImportCost, error) {
	if spec.Environment == nil || spec.Container != nil {
		return nil, errdefs.New(errdefs.Invalid, "backend linux: measuring an environment needs a skill with one")
	}
	spec.Mode, spec.OneShot, spec.Warm, spec.Require = sandbox.ModeSingleUse, true, false, nil
	spec.Env, spec.Network, spec.Resolve, spec.Secrets, spec.ReadPaths, spec.CACerts = nil, nil, nil, nil, nil, nil
	sb, err := d.Open(ctx, spec)
	if err != nil {
		return nil, err
	}
	defer sb.Close()
	b := sb.(*box)
	var cg *cgroup.Group
	if b.cgHost != nil && len(b.controllers) > 0 {
		name := strconv.Itoa(os.Getpid()) + "-" + strconv.FormatUint(jailSeq.Add(1), 10)
		if cg, err = b.cgHost.New(name, b.cgLimits(), b.controllers); err != nil {
			return nil, errdefs.Wrap(errdefs.Internal, err, "jail cgroup")
		}
		defer cg.Remove()
	}
	ctx, cancel := context.WithTimeout(ctx, measureTimeout)
	defer cancel()
	launch, run := b.jail.Launch(ctx, jail.LaunchOptions{Cgroup: cg})
	defer run.Close()
	stdout, stderr := &capped{max: 64 << 10}, &capped{max: 4096}
	python := b.interp.Command
	cmd := &exec.Cmd{Path: python, Args: []string{python, "-I", "-S", "-B", "-c", measureScript, jail.SkillDir, strconv.Itoa(measureRuns), b.interp.Environment},
		Stdout: stdout, Stderr: stderr}
	if err := launch(cmd); err != nil {
		return nil, errdefs.Wrap(errdefs.Internal, err, "start jail (environment measurement)")
	}
	stop := context.AfterFunc(ctx, func() { cmd.Process.Kill() })
	werr := cmd.Wait()
	stop()
	if ctx.Err() != nil {
		return nil, errdefs.New(errdefs.Timeout, "measuring environment %s took longer than %s", spec.Environment.Key, measureTimeout)
	}
	var res struct {
		Error   string            `json:"error"`
		Site    float64           `json:"site"`
		Imports float64           `json:"imports"`
		Modules []string          `json:"modules"`
		Failed  map[string]string `json:"failed"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil || werr != nil || res.Error != "" {
		why := res.Error
		if why == "" {
			why = fmt.Sprintf("%v %v %s", werr, err, strings.TrimSpace(stderr.String()))
		}
		return nil, errdefs.New(errdefs.Unavailable, "measuring environment %s: %s", spec.Environment.Key, why)
	}
	c := &sandbox.ImportCost{
		Site:    time.Duration(res.Site * float64(time.Second)),
		Imports: time.Duration(res.Imports * float64(time.Second)),
		Modules: res.Modules, Failed: res.Failed, Runs: measureRuns,
		How: fmt.Sprintf("measured now in the skill's linux jail: %d fresh interpreters, each processing the environment's site and importing the skill's third-party imports as a call's own process does; the median", measureRuns),
	}
	if c.Modules == nil {
		c.Modules = []string{}
	}
	backend.SetMS(c)
	return c, nil
}
