package worker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
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
//   - A file is used only if its key matches: the format, the SHA-256 of
//     this binary's Harness and the interpreter's executable (path, size,
//     modification time and, on Linux, device, inode and change time);
//     and only if the SHA-256 of its payload matches the one it holds (a
//     truncated or damaged file is compiled again).
//   - The interpreter checks the payload's magic number (the bytecode
//     version, importlib's MAGIC_NUMBER) against its own before it loads
//     the code, and refuses to start otherwise.
//
// Without a usable cache (no cache folder, the interpreter cannot compile
// it, a write fails) the harness is started from source, as Argv does.

// bytecodeFormat heads every cache file.
const bytecodeFormat = "skillbox-harness-bytecode/1\n"

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
	// harnessSum is computed on first use, not in the package's init,
	// which every skillbox process runs.
	harnessSum = sync.OnceValue(func() [32]byte { return sha256.Sum256([]byte(Harness())) })

	bytecodeMu   sync.Mutex
	bytecodeArgv = map[[32]byte][]string{}
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
	payload := readBytecode(file, key)
	if payload == nil {
		if payload = compileHarness(ctx, executable); payload == nil {
			return Argv(python)
		}
		// A failed write only costs the next start a compilation.
		_ = atomicfile.WriteFile(file, encodeBytecode(key, payload), 0o600)
	}
	tail := []string{"-I", "-S", "-B", "-c", bootstrap, "skillbox-worker"}
	b64 := base64.StdEncoding.EncodeToString(payload)
	for len(b64) > argChunk {
		tail, b64 = append(tail, b64[:argChunk]), b64[argChunk:]
	}
	tail = append(tail, b64)
	bytecodeArgv[key] = tail
	return append([]string{python}, tail...)
}

// bytecodeKey is what a cache file must have been made for.
func bytecodeKey(executable string) ([32]byte, bool) {
	fi, err := os.Stat(executable)
	if err != nil || !filepath.IsAbs(executable) {
		return [32]byte{}, false
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s%x\x00%s\x00%d %d %s", bytecodeFormat, harnessSum(), executable,
		fi.Size(), fi.ModTime().UnixNano(), fileID(fi))
	var k [32]byte
	h.Sum(k[:0])
	return k, true
}

// encodeBytecode is a cache file: format, key, SHA-256 of payload, payload.
func encodeBytecode(key [32]byte, payload []byte) []byte {
	sum := sha256.Sum256(payload)
	var b bytes.Buffer
	b.WriteString(bytecodeFormat)
	b.Write(key[:])
	b.Write(sum[:])
	b.Write(payload)
	return b.Bytes()
}

// readBytecode returns the payload of file if it was made for key and is
// intact, else nil.
func readBytecode(file string, key [32]byte) []byte {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	rest, ok := bytes.CutPrefix(b, []byte(bytecodeFormat))
	if !ok || len(rest) < 64+5 || !bytes.Equal(rest[:32], key[:]) {
		return nil
	}
	payload := rest[64:]
	if sum := sha256.Sum256(payload); !bytes.Equal(rest[32:64], sum[:]) {
		return nil
	}
	return payload
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
