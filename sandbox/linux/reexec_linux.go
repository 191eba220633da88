package linux

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// initArg0 marks the re-executed binary as the jail's init stage.
const initArg0 = "skillbox-jail-init"

// init turns the process into the jail's init stage when re-executed with
// the marker argv[0]. It lives in a package init so that any binary that
// links this package (including `go test` binaries) can be re-executed.
// It never returns in that case: it execs the jailed program or exits.
func init() {
	if len(os.Args) > 0 && os.Args[0] == initArg0 {
		jailInit()
	}
}

// jailInit reads the config, builds the jail and execs the program. On
// failure it writes the error to the config socket (which the host reads
// until EOF; a successful exec closes it) and exits 125.
func jailInit() {
	// Every per-thread attribute (seccomp, Landlock, credentials) is set
	// on this thread, which then execs.
	runtime.LockOSThread()
	if len(os.Args) > 1 {
		// A program jailed with Jail.Wrap keeps descriptors of its own
		// after the protocol's: the config socket follows them.
		n, err := strconv.Atoi(os.Args[1])
		if err != nil || n < 3 {
			os.Exit(125)
		}
		fdConfig = n
	}
	sock := os.NewFile(uintptr(fdConfig), "config")
	fail := func(err error) {
		fmt.Fprintf(sock, "%v", err)
		os.Exit(125)
	}
	var cfg jailConfig
	b, err := readConfig(sock)
	if err != nil {
		fail(fmt.Errorf("read config: %w", err))
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		fail(fmt.Errorf("decode config: %w", err))
	}
	if err := setup(&cfg); err != nil {
		fail(err)
	}
	// Descriptors from the config socket on, including the Go runtime's
	// own, close on exec; those below it are the program's.
	if err := unix.CloseRange(uint(fdConfig), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		fail(fmt.Errorf("close_range: %w", err))
	}
	err = unix.Exec(cfg.Argv[0], cfg.Argv, cfg.Env)
	fail(fmt.Errorf("exec %s: %w", cfg.Argv[0], err))
}

// readConfig reads one length-prefixed JSON document (4-byte big-endian).
func readConfig(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(hdr[0])<<24 | int(hdr[1])<<16 | int(hdr[2])<<8 | int(hdr[3])
	if n <= 0 || n > 16<<20 {
		return nil, fmt.Errorf("bad config length %d", n)
	}
	b := make([]byte, n)
	_, err := io.ReadFull(r, b)
	return b, err
}
