package image

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// pythonFile is the record, beside an image's rootfs, of what its
// interpreters said of themselves when run (jailed) with PythonProbeArgs.
const pythonFile = "python.json"

// MinPython is the oldest CPython skillbox's harness runs on.
var MinPython = [2]int{3, 8}

// PythonProbeArgs are the arguments (after the interpreter's path) that
// make a Python print its version and implementation on one line, in
// isolated mode without site: "3.11.2 cpython". An interpreter that does
// not know -I (older than 3.4) fails; one without sys.implementation
// (Python 2 run through a wrapper that drops -I) says "unknown".
var PythonProbeArgs = []string{"-I", "-S", "-c",
	`import sys; v = sys.version_info; print("%d.%d.%d %s" % (v[0], v[1], v[2], getattr(getattr(sys, "implementation", None), "name", "unknown")))`}

// PythonInfo is what an image's interpreter said of itself.
type PythonInfo struct {
	// Version is "MAJOR.MINOR.MICRO"; Implementation is
	// sys.implementation.name ("cpython", "pypy", ...).
	Version        string `json:"version"`
	Implementation string `json:"implementation"`
}

// String is "CPython 3.11.2" (or the implementation's name as given).
func (p PythonInfo) String() string {
	impl := p.Implementation
	switch impl {
	case "cpython":
		impl = "CPython"
	case "pypy":
		impl = "PyPy"
	}
	return impl + " " + p.Version
}

// ParsePythonInfo reads the line PythonProbeArgs print.
func ParsePythonInfo(out []byte) (PythonInfo, error) {
	line := strings.TrimSpace(string(out))
	ver, impl, ok := strings.Cut(line, " ")
	parts := strings.Split(ver, ".")
	if !ok || len(parts) != 3 || strings.ContainsAny(impl, " \t\r\n") || impl == "" || len(impl) > 64 {
		return PythonInfo{}, fmt.Errorf("not a version line: %q", truncate(line, 200))
	}
	for _, p := range parts {
		if _, err := strconv.ParseUint(p, 10, 16); err != nil {
			return PythonInfo{}, fmt.Errorf("not a version line: %q", truncate(line, 200))
		}
	}
	return PythonInfo{Version: ver, Implementation: impl}, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Supported says why the harness cannot run on p ("" when it can): it
// needs CPython MinPython or later.
func (p PythonInfo) Supported() string {
	if p.Implementation != "cpython" {
		return fmt.Sprintf("is %s, not CPython", p)
	}
	parts := strings.SplitN(p.Version, ".", 3)
	if len(parts) < 2 {
		return fmt.Sprintf("reports version %q", p.Version)
	}
	major, _ := strconv.Atoi(parts[0])
	minor, _ := strconv.Atoi(parts[1])
	if major < MinPython[0] || major == MinPython[0] && minor < MinPython[1] {
		return fmt.Sprintf("is %s, older than %d.%d", p, MinPython[0], MinPython[1])
	}
	return ""
}

// pythonKey is a record's key for the interpreter at path python.
func pythonKey(python string) string {
	h := sha256.Sum256([]byte(python))
	return hex.EncodeToString(h[:8])
}

// PythonRecord returns what the interpreter at python (a path inside the
// image) said of itself when last probed, if it was; the image's
// content, and so the answer, never changes.
func (img *Image) PythonRecord(python string) (PythonInfo, bool) {
	recs := img.pythonRecords()
	r, ok := recs[pythonKey(python)]
	return r.PythonInfo, ok && r.Path == python
}

type pythonRecord struct {
	Path string `json:"path"`
	PythonInfo
}

func (img *Image) pythonRecords() map[string]pythonRecord {
	recs := map[string]pythonRecord{}
	data, err := os.ReadFile(filepath.Join(img.Dir, pythonFile))
	if err == nil {
		json.Unmarshal(data, &recs)
	}
	return recs
}

// RecordPython records what the interpreter at python said of itself.
// The record is written whole (a concurrent writer's may be lost: that
// interpreter is then probed again); a failure to write only costs a probe.
func (img *Image) RecordPython(python string, info PythonInfo) error {
	recs := img.pythonRecords()
	recs[pythonKey(python)] = pythonRecord{Path: python, PythonInfo: info}
	data, _ := json.MarshalIndent(recs, "", "  ")
	f, err := os.CreateTemp(img.Dir, ".python-*.json")
	if err != nil {
		return err
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	f.Chmod(0o644)
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), filepath.Join(img.Dir, pythonFile)); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}
