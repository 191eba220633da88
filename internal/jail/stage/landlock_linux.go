package stage

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/landlock-lsm/go-landlock/landlock"
	llsys "github.com/landlock-lsm/go-landlock/landlock/syscall"
)

// landlockConfigs are go-landlock's configurations by ABI version: each
// handles every right that version knows. Newer kernels are restricted as
// the newest version listed (the rights skillbox relies on are all there).
var landlockConfigs = []landlock.Config{1: landlock.V1, 2: landlock.V2, 3: landlock.V3,
	4: landlock.V4, 5: landlock.V5, 6: landlock.V6, 7: landlock.V7}

// landlockABI returns the kernel's Landlock ABI version, or an error when
// Landlock is missing.
func landlockABI() (int, error) {
	v, err := llsys.LandlockGetABIVersion()
	if err != nil {
		return 0, fmt.Errorf("landlock unavailable: %w", err)
	}
	if v < 1 {
		return 0, errors.New("landlock unavailable")
	}
	return v, nil
}

// fsRules lists path grants.
type fsRules struct {
	// RODirs and ROFiles may be read (and executed).
	RODirs, ROFiles []string
	// RWDirs may be read and written, RWFiles (device nodes) read and
	// written but not ioctl'ed.
	RWDirs, RWFiles []string
	// ConnectTCP are the TCP ports connect(2) may reach (ABI >= 4; below
	// it Landlock restricts no TCP at all).
	ConnectTCP []uint16
}

// restrictLandlock enforces, on every thread of the process and what it
// execs, exactly the rights the kernel's ABI can restrict (never
// best-effort): the file system beyond r is denied; with ABI >= 4 bind is
// denied on every TCP port and connect on every port but r.ConnectTCP;
// with ABI >= 6 abstract unix sockets and signals are scoped to the jail.
// It also sets no_new_privs.
func restrictLandlock(abi int, r fsRules) error {
	cfg := landlockConfigs[min(abi, len(landlockConfigs)-1)]
	rw := landlock.RWDirs(r.RWDirs...)
	if abi >= 2 {
		// Moving or linking a file into another folder ("refer": a
		// tool's atomic os.replace from a temporary folder, as
		// setuptools builds every wheel) is denied by Landlock unless
		// both folders grant it. Within the writable folders it grants
		// nothing more: they all have every right, and a move between
		// two of them that are different file systems fails anyway
		// (EXDEV). ABI 1 cannot grant it: such moves fail there.
		rw = rw.WithRefer()
	}
	rules := []landlock.Rule{landlock.RODirs(r.RODirs...), landlock.ROFiles(r.ROFiles...),
		rw, landlock.RWFiles(r.RWFiles...)}
	if abi >= 4 {
		for _, p := range r.ConnectTCP {
			rules = append(rules, landlock.ConnectTCP(p))
		}
	}
	return cfg.Restrict(rules...)
}

// applyLandlock restricts the init stage (and the exec'd program) to
// reading the jail's runtime, bundle and /proc, and writing only /scratch
// and the /dev nodes.
func applyLandlock(cfg *Config) error {
	abi, err := landlockABI()
	if err != nil {
		return err
	}
	var r fsRules
	switch {
	case cfg.NoNetwork && cfg.Egress == nil:
	case !cfg.NoNetwork && cfg.Egress != nil:
		// The only TCP connect allowed is to the egress proxy's socket.
		r.ConnectTCP = []uint16{uint16(cfg.Egress.Port)}
		if cfg.Egress.CAFile != "" {
			r.ROFiles = append(r.ROFiles, cfg.Egress.CAFile)
		}
		if cfg.Egress.CAOver != "" {
			r.ROFiles = append(r.ROFiles, cfg.Egress.CAOver)
		}
	default:
		// Network without the proxy is never granted; fail closed.
		return fmt.Errorf("inconsistent network config")
	}
	for _, op := range cfg.Mounts {
		if op.Kind != "bind" {
			continue
		}
		if op.File {
			r.ROFiles = append(r.ROFiles, op.Dst)
		} else {
			r.RODirs = append(r.RODirs, op.Dst)
		}
	}
	if cfg.Bundle != "" {
		r.RODirs = append(r.RODirs, SkillDir)
	}
	r.RODirs = append(r.RODirs, "/proc")
	if _, err := os.Stat(THPDir); err == nil {
		r.RODirs = append(r.RODirs, THPDir)
	}
	r.RWDirs = []string{ScratchDir}
	for _, t := range cfg.Tmpfs {
		r.RWDirs = append(r.RWDirs, t.Path)
	}
	for _, fd := range cfg.WriteFDs {
		// The folder the descriptor holds (the magic link resolves to
		// it), though no path of the jail reaches it.
		r.RWDirs = append(r.RWDirs, "/proc/self/fd/"+strconv.Itoa(fd))
	}
	r.RWFiles = []string{"/dev/null", "/dev/zero", "/dev/random", "/dev/urandom"}
	return restrictLandlock(abi, r)
}

// LandlockABI is the host's Landlock ABI version, or why it has none the
// jail can use.
func LandlockABI() (int, error) { return landlockABI() }
