package skill

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/skillbox-dev/skillbox/errdefs"
)

// The files of a Skillware bundle.
const (
	// CodeFile holds the skill's BaseSkill subclass; required.
	CodeFile = "skill.py"
	// InstructionsFile is the prompt for the agent; optional.
	InstructionsFile = "instructions.md"
	// CardFile is the UI card; optional.
	CardFile = "card.json"
)

// maxAuxFile bounds instructions.md and card.json.
const maxAuxFile = 4 << 20

// Bundle is a loaded skill folder. Loading reads and validates the files; it
// runs nothing.
type Bundle struct {
	// Dir is the bundle's absolute, cleaned path.
	Dir string
	// Manifest is the parsed manifest.yaml.
	Manifest *Manifest
	// Instructions is instructions.md, or "" if the bundle has none.
	Instructions string
	// Card is card.json (valid JSON), or nil if the bundle has none.
	Card json.RawMessage

	// read holds the SHA-256 of each file Load read (manifest, instructions,
	// card), so that Seal can prove the copy it runs holds the same bytes.
	read map[string][32]byte
}

// Load reads the bundle in dir: manifest.yaml and skill.py are required,
// instructions.md and card.json optional. These files must be regular files
// (a symlink to a regular file inside the bundle is followed). A missing dir
// is errdefs.NotFound; every problem with its contents is errdefs.Invalid.
// Manifest errors name the manifest by its full path.
func Load(dir string) (*Bundle, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, errdefs.New(errdefs.Invalid, "skill folder %q: %v", dir, err)
	}
	abs = filepath.Clean(abs)
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, errdefs.New(errdefs.NotFound, "skill folder %s does not exist", abs)
	case err != nil:
		return nil, errdefs.New(errdefs.Invalid, "skill folder %s: %v", abs, err)
	case !fi.IsDir():
		return nil, errdefs.New(errdefs.Invalid, "skill folder %s is not a directory", abs)
	}
	b := &Bundle{Dir: abs, read: map[string][32]byte{}}

	data, err := readBundleFile(abs, ManifestFile, maxManifestSize)
	if err != nil {
		return nil, err
	}
	if data != nil {
		b.read[ManifestFile] = sha256.Sum256(data)
	}
	if data == nil {
		return nil, errdefs.New(errdefs.Invalid, "%s is not a skill folder: no %s", abs, ManifestFile)
	}
	if b.Manifest, err = parseManifest(filepath.Join(abs, ManifestFile), data); err != nil {
		return nil, err
	}

	code, err := readBundleFile(abs, CodeFile, -1)
	if err != nil {
		return nil, err
	}
	if code == nil {
		return nil, errdefs.New(errdefs.Invalid, "skill folder %s has no %s", abs, CodeFile)
	}

	instr, err := readBundleFile(abs, InstructionsFile, maxAuxFile)
	if err != nil {
		return nil, err
	}
	b.Instructions = string(instr)
	if instr != nil {
		b.read[InstructionsFile] = sha256.Sum256(instr)
	}

	card, err := readBundleFile(abs, CardFile, maxAuxFile)
	if err != nil {
		return nil, err
	}
	if card != nil {
		b.read[CardFile] = sha256.Sum256(card)
		if err := checkJSON(card); err != nil {
			return nil, errdefs.New(errdefs.Invalid, "%s: %v", filepath.Join(abs, CardFile), err)
		}
		b.Card = json.RawMessage(bytes.TrimSpace(card))
	}
	return b, nil
}

// readBundleFile reads name in dir. A missing file yields (nil, nil). The file
// must be regular, or a symlink that stays inside the bundle to one. limit < 0
// only checks that the file is there; the result is then non-nil but empty.
func readBundleFile(dir, name string, limit int64) ([]byte, error) {
	p := filepath.Join(dir, name)
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, errdefs.New(errdefs.Invalid, "%s: %v", p, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, _ := os.Readlink(p)
		if err := checkLink(dir, name, target); err != nil {
			return nil, err
		}
		if fi, err = os.Stat(p); err != nil {
			return nil, errdefs.New(errdefs.Invalid, "%s: symlink to %q: %v", p, target, err)
		}
		if !fi.Mode().IsRegular() {
			return nil, errdefs.New(errdefs.Invalid, "%s must be a regular file, not %s", p, typeName(fi.Mode()))
		}
		if rel, out := leftOut(dir, p); out {
			return nil, errdefs.New(errdefs.Invalid, "%s is a symlink to %s, which is left out of the bundle (as .git, __pycache__ and %s are); make it a regular file or link it to one", p, rel, SignatureFile)
		}
	}
	if !fi.Mode().IsRegular() {
		return nil, errdefs.New(errdefs.Invalid, "%s must be a regular file, not %s", p, typeName(fi.Mode()))
	}
	if limit < 0 {
		return []byte{}, nil
	}
	if fi.Size() > limit {
		return nil, errdefs.New(errdefs.Invalid, "%s is too large (%d bytes; the limit is %d)", p, fi.Size(), limit)
	}
	f, err := openRegular(p)
	if err != nil {
		return nil, errdefs.New(errdefs.Invalid, "%s: %v", p, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, errdefs.New(errdefs.Invalid, "%s: %v", p, err)
	}
	if int64(len(data)) > limit {
		return nil, errdefs.New(errdefs.Invalid, "%s is too large (the limit is %d bytes)", p, limit)
	}
	if data == nil {
		data = []byte{}
	}
	return data, nil
}

// leftOut reports whether the symlink p inside dir, which resolves to a
// regular file, resolves to one that Files leaves out of the bundle, and
// that file's path relative to dir. Such a file is in no digest and no
// sealed copy, so what Load read through the link is not what the digest
// pins.
func leftOut(dir, p string) (string, bool) {
	root, err1 := filepath.EvalSymlinks(dir)
	real, err2 := filepath.EvalSymlinks(p)
	rel, err3 := filepath.Rel(root, real)
	if err1 != nil || err2 != nil || err3 != nil {
		return "", false // Files reports what is wrong
	}
	rel = filepath.ToSlash(rel)
	parts := strings.Split(rel, "/")
	for i, c := range parts {
		if ignored(c, i < len(parts)-1) {
			return rel, true
		}
	}
	return rel, isSignature(rel, 0) // p resolves to a regular file
}

// checkJSON reports whether data is one JSON value, with the line and column
// of a syntax error.
func checkJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	var v any
	err := dec.Decode(&v)
	if err == nil {
		if _, err2 := dec.Token(); err2 != io.EOF {
			return fmt.Errorf("line %d: invalid JSON: extra data after the top-level value", lineOf(data, dec.InputOffset()))
		}
		return nil
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		// Offset counts the offending byte; point at it, not after it.
		line, col := lineCol(data, se.Offset-1)
		return fmt.Errorf("line %d, column %d (offset %d): invalid JSON: %v", line, col, se.Offset, se)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("line %d: invalid JSON: unexpected end of file", lineOf(data, int64(len(data))))
	}
	return fmt.Errorf("invalid JSON: %v", err)
}

func lineOf(data []byte, off int64) int {
	l, _ := lineCol(data, off)
	return l
}

// lineCol converts a byte offset to a 1-based line and column.
func lineCol(data []byte, off int64) (line, col int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	if off < 0 {
		off = 0
	}
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = len(before) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// loadedFiles are the files whose contents Load keeps (and hashes in read).
var loadedFiles = []string{ManifestFile, InstructionsFile, CardFile}

// differs compares the files Load parsed for b with the same files in
// entries, a file list of b's folder read after Load: "" when each holds the
// same bytes in both, or is in neither; otherwise what differs. Load and
// Files read the folder one after the other, so a file replaced in between
// would leave a skill whose digest pins a manifest other than the one shown
// (by the trust review, inspect and the policy); newSkill refuses it.
func (b *Bundle) differs(entries []FileEntry) string {
	byPath := make(map[string]FileEntry, len(entries))
	for _, e := range entries {
		byPath[e.Path] = e
	}
	for _, name := range loadedFiles {
		sum, loaded := b.read[name]
		e, listed := fileAt(byPath, name)
		switch {
		case loaded && !listed:
			return "the " + name + " it loaded is gone from its file list"
		case !loaded && listed:
			return name + " appeared after it was loaded"
		case loaded && e.SHA256 != hex.EncodeToString(sum[:]):
			return "the " + name + " it loaded is not the one it digested"
		}
	}
	return ""
}

// fileAt finds the regular file that the slash-separated path name resolves
// to among the entries of byPath (by Path), following their symlinks as
// checkLink follows them on disk. It reports false when name resolves to
// nothing listed, to something other than a regular file, or loops.
func fileAt(byPath map[string]FileEntry, name string) (FileEntry, bool) {
	var cur []string // resolved path so far, as components
	todo := strings.Split(name, "/")
	for hops := 0; len(todo) > 0; {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(cur) == 0 {
				return FileEntry{}, false
			}
			cur = cur[:len(cur)-1]
			continue
		}
		next := append(cur[:len(cur):len(cur)], c)
		e, ok := byPath[strings.Join(next, "/")]
		if !ok {
			return FileEntry{}, false
		}
		if e.Mode != ModeSymlink {
			cur = next
			continue
		}
		if hops++; hops > maxLinkHops {
			return FileEntry{}, false
		}
		// The target is relative to the link's folder, cur.
		todo = append(strings.Split(filepath.ToSlash(e.Target), "/"), todo...)
	}
	e, ok := byPath[strings.Join(cur, "/")]
	return e, ok && (e.Mode == ModeFile || e.Mode == ModeExec)
}

// openRegular opens p to read, refusing (errdefs.Invalid) anything but a
// regular file, as it is when opened: a file looked at before may have been
// swapped since for a FIFO, whose open would wait forever, or a device.
func openRegular(p string) (*os.File, error) {
	f, err := os.OpenFile(p, openFlags, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("it is a %s now, not the regular file it was (it changed while skillbox was reading it)", typeName(fi.Mode()))
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
