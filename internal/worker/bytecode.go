package worker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/skillbox-dev/skillbox/internal/atomicfile"
	"github.com/skillbox-dev/skillbox/internal/userdir"
)

// The harness as bytecode. Compiling Harness (~70 KB of source) costs ~8 ms
// of CPU at every interpreter start; unmarshalling its code object ~0.1 ms.
// HarnessCommand hands the interpreter the code object the same interpreter
// compiled once from Harness, cached in the user cache folder:
//
//   - The cache is written and read by the host process only (never by a
//     worker: no jail shows the cache folder). The code reaches the worker
//     through a sealed memfd (descriptor CodeFD) holding the bytes the host
//     checked, so nothing a skill can reach is ever loaded as code. The
//     cache lives where the interpreter cache and the sealed bundles do,
//     with the same trust: a folder only this user may write.
//   - A file is used only if its key matches: the format, a digest of this
//     binary's harness sources and the interpreter's executable (path,
//     size, modification time and, on Unix, device and inode); and only if
//     the CRC-32C of its payload matches the one it holds (a truncated or
//     damaged file is compiled again). These detect a change or damage,
//     not an attacker (who could write the user's cache folder could write
//     the binary). The key and the sources' digest are SHA-256 (truncated
//     to 64 bits): a change must not go unseen. The payload's check is
//     CRC-32C, which the CPU computes (SSE 4.2, ARMv8 CRC32) and whose
//     table the process has already built (klauspost/compress's snappy
//     init), where CRC-64 builds its slicing tables (both polynomials) at
//     first use: 0.36 -> 0.13 ms of a cold `run` under perf.
//   - The interpreter checks the payload's magic number (the bytecode
//     version, importlib's MAGIC_NUMBER) against its own before it loads
//     the code, and refuses to start otherwise.
//   - Not in argv: 140 KB of base64 there cost the interpreter ~1000 page
//     faults (it converts every argument to wide characters, several
//     times) and the init stage a copy.
//
// Without a usable cache (no cache folder, the interpreter cannot compile
// it, a write fails, no memfd) the harness is started from source, as Argv
// does.

// bytecodeFormat heads every cache file.
const bytecodeFormat = "skillbox-harness-bytecode/4\n"

// CodeFD is the worker's descriptor that holds the harness's bytecode
// when HarnessCommand returns a code file: the first of exec.Cmd's
// ExtraFiles after the two StartWith puts first (fds 3 and 4).
const CodeFD = 5

// bootstrap is the -c program that runs the harness from its bytecode:
// descriptor CodeFD holds magic number + marshalled code object; it is
// read and closed. The harness runs in __main__ with the same globals and
// sys.argv as `-c Harness skillbox-worker` gives (the code was compiled
// with the same "<string>" file name), and no name of the bootstrap's is
// left behind.
const bootstrap = `def _skillbox_boot():
    import marshal, _io, _frozen_importlib_external as e
    with _io.open(5, "rb") as f:
        b = f.read()
    if b[:4] != e.MAGIC_NUMBER:
        raise SystemExit("skillbox: the cached harness bytecode is not for this interpreter; remove the cache folder's harness files")
    return marshal.loads(memoryview(b)[4:])
exec((_skillbox_boot(), globals().pop("_skillbox_boot"))[0])
`

// compileScript, run by the interpreter with Harness on stdin, writes the
// magic number and the marshalled code object to stdout.
const compileScript = `import sys, marshal, _frozen_importlib_external as e
src = sys.stdin.buffer.read().decode("utf-8")
sys.stdout.buffer.write(e.MAGIC_NUMBER + marshal.dumps(compile(src, "<string>", "exec")))
`

var (
	// harnessSum identifies the harness's sources; computed on first use,
	// not in the package's init, which every skillbox process runs.
	harnessSum = sync.OnceValue(func() uint64 {
		h := sha256.New()
		io.WriteString(h, harnessSource)
		io.WriteString(h, sdkMarker)
		io.WriteString(h, sdkSource)
		return binary.BigEndian.Uint64(h.Sum(nil))
	})

	bytecodeMu   sync.Mutex
	bytecodeCode = map[uint64][]byte{}
)

// HarnessCommand returns the argv that starts the harness with the
// interpreter (executable is its real binary, symlinks resolved; python the
// command that runs it) and, when the harness can be passed as bytecode
// that interpreter compiled (cached, or made now), the file that holds it:
// the caller puts it at CodeFD (StartWith's first extra file) and closes it
// once the worker started. Otherwise code is nil and argv is Argv(python).
func HarnessCommand(ctx context.Context, python, executable string) (argv []string, code *os.File) {
	b := harnessBytecode(ctx, executable)
	if b == nil {
		return Argv(python), nil
	}
	f, err := sealedFile("skillbox-harness", b)
	if err != nil {
		return Argv(python), nil
	}
	return []string{python, "-I", "-S", "-B", "-c", bootstrap, "skillbox-worker"}, f
}

// harnessBytecode returns magic number + marshalled harness for the
// interpreter, from memory, the cache folder or a compilation; nil if
// there is none.
func harnessBytecode(ctx context.Context, executable string) []byte {
	key, ok := bytecodeKey(executable)
	if !ok {
		return nil
	}
	bytecodeMu.Lock()
	defer bytecodeMu.Unlock()
	if b, ok := bytecodeCode[key]; ok {
		return b
	}
	dir, err := userdir.Cache(os.Getenv)
	if err != nil {
		return nil
	}
	// One file per interpreter and format: binaries of two formats (an
	// upgrade, a benchmark alternating two builds) do not overwrite each
	// other's file at every start.
	name := sha256.Sum256([]byte(bytecodeFormat + executable))
	file := filepath.Join(dir, "harness", fmt.Sprintf("%x.bin", name[:12]))
	b := readBytecode(file, key)
	if b == nil {
		// Compiling costs an interpreter start: only worth it if the
		// result can be kept (a cache folder that cannot be written would
		// make every skillbox process pay it).
		if !writableDir(filepath.Dir(file)) {
			return nil
		}
		if b = compileHarness(ctx, executable); b == nil {
			return nil
		}
		// A failed write only costs the next start a compilation.
		_ = atomicfile.WriteFile(file, encodeBytecode(key, b), 0o600)
	}
	bytecodeCode[key] = b
	return b
}

// writableDir creates dir (0700) if missing and reports whether a file can
// be created in it.
func writableDir(dir string) bool {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false
	}
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return false
	}
	f.Close()
	os.Remove(f.Name())
	return true
}

// bytecodeKey is what a cache file must have been made for.
func bytecodeKey(executable string) (uint64, bool) {
	fi, err := os.Stat(executable)
	if err != nil || !filepath.IsAbs(executable) {
		return 0, false
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s%x\x00%s\x00%d %d %s", bytecodeFormat, harnessSum(), executable,
		fi.Size(), fi.ModTime().UnixNano(), fileID(fi))
	return binary.BigEndian.Uint64(h.Sum(nil)), true
}

// encodeBytecode is a cache file: format, key, CRC-32C of the payload (both
// big-endian, 8 bytes each), payload.
func encodeBytecode(key uint64, payload []byte) []byte {
	b := make([]byte, 0, len(bytecodeFormat)+16+len(payload))
	b = append(b, bytecodeFormat...)
	b = binary.BigEndian.AppendUint64(b, key)
	b = binary.BigEndian.AppendUint64(b, payloadSum(payload))
	return append(b, payload...)
}

// readBytecode returns the payload of file if it was made for key and is
// intact, else nil.
func readBytecode(file string, key uint64) []byte {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	rest, ok := bytes.CutPrefix(b, []byte(bytecodeFormat))
	if !ok || len(rest) < 16+5 || binary.BigEndian.Uint64(rest) != key {
		return nil
	}
	payload := rest[16:]
	if binary.BigEndian.Uint64(rest[8:]) != payloadSum(payload) {
		return nil
	}
	return payload
}

// payloadSum is the check a cache file holds of its payload.
// (crc32 builds the Castagnoli table once, on first use.)
func payloadSum(payload []byte) uint64 {
	return uint64(crc32.Checksum(payload, crc32.MakeTable(crc32.Castagnoli)))
}

// compileHarness has the interpreter compile Harness (trusted code, the
// interpreter's own compiler, no skill involved) and returns magic number
// and marshalled code, or nil.
func compileHarness(ctx context.Context, executable string) []byte {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, executable, "-I", "-S", "-B", "-c", compileScript)
	cmd.Stdin = strings.NewReader(Harness())
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	out, err := cmd.Output()
	if err != nil || len(out) < 5 || binary.LittleEndian.Uint16(out[2:4]) != 0x0a0d {
		return nil
	}
	return out
}
