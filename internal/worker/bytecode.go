package worker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc64"
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
// HarnessArgv hands the interpreter the code object the same interpreter
// compiled once from Harness, cached in the user cache folder:
//
//   - The cache is written and read by the host process only (never by a
//     worker: no jail shows the cache folder, and the code is passed in
//     the worker's argv, so nothing a skill can reach is ever loaded as
//     code). It lives where the interpreter cache and the sealed bundles
//     do, with the same trust: a folder only this user may write.
//   - A file is used only if its key matches: the format, a CRC-64 of this
//     binary's harness sources and the interpreter's executable (path,
//     size, modification time and, on Unix, device and inode); and only if
//     the CRC-64 of its payload matches the one it holds (a truncated or
//     damaged file is compiled again). CRC-64, not SHA-256: these detect a
//     change or damage, not an attacker (who could write the user's cache
//     folder could write the binary), and hashing 70 KB of harness and
//     140 KB of payload with SHA-256 cost ~2 ms of every start here.
//   - The file holds the payload as the base64 text the argv carries, so
//     a start reads it and slices it, nothing more.
//   - The interpreter checks the payload's magic number (the bytecode
//     version, importlib's MAGIC_NUMBER) against its own before it loads
//     the code, and refuses to start otherwise.
//
// Without a usable cache (no cache folder, the interpreter cannot compile
// it, a write fails) the harness is started from source, as Argv does.

// bytecodeFormat heads every cache file.
const bytecodeFormat = "skillbox-harness-bytecode/2\n"

// argChunk is the size of each argv string that carries the base64 code;
// Linux caps one argument at 128 KiB (MAX_ARG_STRLEN).
const argChunk = 64 << 10

// bootstrap is the -c program that runs the harness from its bytecode:
// argv[2:] is the base64 of magic number + marshalled code object. It
// restores sys.argv to what `-c Harness skillbox-worker` gives (the
// harness runs in __main__ with the same globals, code compiled with the
// same "<string>" file name) and leaves no name of its own behind.
const bootstrap = `def _skillbox_boot():
    import sys, marshal, binascii, _frozen_importlib_external as e
    b = binascii.a2b_base64("".join(sys.argv[2:]))
    del sys.argv[2:]
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
		h := crc64.New(crcTable())
		io.WriteString(h, harnessSource)
		io.WriteString(h, sdkMarker)
		io.WriteString(h, sdkSource)
		return h.Sum64()
	})
	crcTable = sync.OnceValue(func() *crc64.Table { return crc64.MakeTable(crc64.ECMA) })

	bytecodeMu   sync.Mutex
	bytecodeArgv = map[uint64][]string{}
)

// HarnessArgv is Argv(python) with the harness passed as bytecode compiled
// by this interpreter (executable is its real binary, symlinks resolved;
// python the command that runs it) when the cache holds it or it can be
// made; otherwise Argv(python).
func HarnessArgv(ctx context.Context, python, executable string) []string {
	key, ok := bytecodeKey(executable)
	if !ok {
		return Argv(python)
	}
	bytecodeMu.Lock()
	defer bytecodeMu.Unlock()
	if tail, ok := bytecodeArgv[key]; ok {
		return append([]string{python}, tail...)
	}
	dir, err := userdir.Cache(os.Getenv)
	if err != nil {
		return Argv(python)
	}
	name := sha256.Sum256([]byte(executable))
	file := filepath.Join(dir, "harness", fmt.Sprintf("%x.bin", name[:12]))
	b64 := readBytecode(file, key)
	if b64 == "" {
		code := compileHarness(ctx, executable)
		if code == nil {
			return Argv(python)
		}
		b64 = base64.StdEncoding.EncodeToString(code)
		// A failed write only costs the next start a compilation.
		_ = atomicfile.WriteFile(file, encodeBytecode(key, b64), 0o600)
	}
	tail := []string{"-I", "-S", "-B", "-c", bootstrap, "skillbox-worker"}
	for len(b64) > argChunk {
		tail, b64 = append(tail, b64[:argChunk]), b64[argChunk:]
	}
	tail = append(tail, b64)
	bytecodeArgv[key] = tail
	return append([]string{python}, tail...)
}

// bytecodeKey is what a cache file must have been made for.
func bytecodeKey(executable string) (uint64, bool) {
	fi, err := os.Stat(executable)
	if err != nil || !filepath.IsAbs(executable) {
		return 0, false
	}
	h := crc64.New(crcTable())
	fmt.Fprintf(h, "%s%x\x00%s\x00%d %d %s", bytecodeFormat, harnessSum(), executable,
		fi.Size(), fi.ModTime().UnixNano(), fileID(fi))
	return h.Sum64(), true
}

// encodeBytecode is a cache file: format, key, CRC-64 of the payload (both
// big-endian), payload (base64).
func encodeBytecode(key uint64, b64 string) []byte {
	b := make([]byte, 0, len(bytecodeFormat)+16+len(b64))
	b = append(b, bytecodeFormat...)
	b = binary.BigEndian.AppendUint64(b, key)
	b = binary.BigEndian.AppendUint64(b, crc64.Checksum([]byte(b64), crcTable()))
	return append(b, b64...)
}

// readBytecode returns the payload of file if it was made for key and is
// intact, else "".
func readBytecode(file string, key uint64) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	rest, ok := bytes.CutPrefix(b, []byte(bytecodeFormat))
	if !ok || len(rest) < 16+8 || binary.BigEndian.Uint64(rest) != key {
		return ""
	}
	payload := rest[16:]
	if binary.BigEndian.Uint64(rest[8:]) != crc64.Checksum(payload, crcTable()) {
		return ""
	}
	return string(payload)
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
