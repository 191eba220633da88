package stage

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/skillbox-dev/skillbox/internal/frame"
)

// Arg0 marks the re-executed binary as the jail's init stage.
const Arg0 = "skillbox-jail-init"

// maxConfig caps the config frame the init stage reads.
const maxConfig = 16 << 20

// init turns the process into the jail's init stage when re-executed with
// the marker argv[0]. It lives in a package init so that any binary that
// links this package (every binary with a jailing backend, and their `go
// test` binaries) can be re-executed. It never returns in that case: it
// execs the jailed program or exits.
//
// Go runs a package's init once its imports are initialized, and among the
// packages ready at a step, the one first by import path (the language
// spec's order). This package imports only the standard library, x/sys,
// x/net/bpf, go-landlock, the seccomp filter and internal/frame, so it is
// ready, and runs, before the heavy packages the rest of the binary links
// (the JSON-schema library compiles its metaschemas in its init, ~10 ms):
// the init stage, which execs from here, never runs those.
func init() {
	if len(os.Args) > 0 && os.Args[0] == Arg0 {
		jailInit()
	}
}

// jailInit reads the config from the config socket, whose descriptor is
// argv[1] (after the program's own descriptors), builds the jail and execs
// the program. On failure it writes the error to the config socket (which
// the host reads until EOF; a successful exec closes it) and exits 125.
func jailInit() {
	// Every per-thread attribute (seccomp, Landlock, credentials) is set
	// on this thread, which then execs.
	runtime.LockOSThread()
	if len(os.Args) != 2 {
		os.Exit(125)
	}
	fd, err := strconv.Atoi(os.Args[1])
	if err != nil || fd < 3 {
		os.Exit(125)
	}
	sock := os.NewFile(uintptr(fd), "config")
	fail := func(err error) {
		fmt.Fprintf(sock, "%v", err)
		os.Exit(125)
	}
	var cfg Config
	b, err := frame.Read(sock, maxConfig)
	if err != nil {
		fail(fmt.Errorf("read config: %w", err))
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		fail(fmt.Errorf("decode config: %w", err))
	}
	if err := setup(&cfg, fd); err != nil {
		fail(err)
	}
	// Descriptors from the config socket on, including the Go runtime's
	// own, close on exec; those below it are the program's.
	if err := unix.CloseRange(uint(fd), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		fail(fmt.Errorf("close_range: %w", err))
	}
	err = unix.Exec(cfg.Argv[0], cfg.Argv, cfg.Env)
	fail(fmt.Errorf("exec %s: %w", cfg.Argv[0], err))
}
