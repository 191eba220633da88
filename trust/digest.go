package trust

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/skillbox-dev/skillbox/skill"
)

// FilesOf converts skill.Files entries to the stored form.
func FilesOf(entries []skill.FileEntry) []File {
	out := make([]File, 0, len(entries))
	for _, e := range entries {
		f := File{Path: e.Path}
		switch e.Mode {
		case skill.ModeDir:
			f.Kind = "d"
		case skill.ModeSymlink:
			f.Kind, f.Target = "l", e.Target
		case skill.ModeExec:
			f.Kind, f.Size, f.SHA256 = "x", e.Size, e.SHA256
		default:
			f.Kind, f.Size, f.SHA256 = "f", e.Size, e.SHA256
		}
		out = append(out, f)
	}
	return out
}

// DigestFiles computes the bundle digest of a file list, exactly as
// skill.Digest does (the format is documented there; a test keeps the two
// in step). It lets the store check that a file list matches its digest,
// and lets signatures cover a bundle without its own signature file.
func DigestFiles(files []File) string {
	h := sha256.New()
	io.WriteString(h, "skillbox-bundle-digest-v1\n")
	var n [8]byte
	u64 := func(v uint64) {
		binary.BigEndian.PutUint64(n[:], v)
		h.Write(n[:])
	}
	for _, f := range files {
		u64(uint64(len(f.Path)))
		io.WriteString(h, f.Path)
		if len(f.Kind) != 1 {
			h.Write([]byte{'?'}) // never a valid digest input; validated lists have one-letter kinds
		} else {
			h.Write([]byte(f.Kind))
		}
		switch f.Kind {
		case "l":
			u64(uint64(len(f.Target)))
			io.WriteString(h, f.Target)
		case "f", "x":
			u64(uint64(f.Size))
			sum, _ := hex.DecodeString(f.SHA256)
			h.Write(sum)
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// Changes lists how a bundle differs from a pinned file list.
type Changes struct {
	Added, Removed, Modified []string
}

// Empty reports whether nothing changed.
func (c Changes) Empty() bool { return len(c.Added)+len(c.Removed)+len(c.Modified) == 0 }

// String renders the changes on one line: "added: a, b; removed: c; modified: d".
func (c Changes) String() string {
	var parts []string
	for _, p := range []struct {
		what  string
		files []string
	}{{"added", c.Added}, {"removed", c.Removed}, {"modified", c.Modified}} {
		if len(p.files) > 0 {
			parts = append(parts, fmt.Sprintf("%s: %s", p.what, strings.Join(p.files, ", ")))
		}
	}
	return strings.Join(parts, "; ")
}

// Diff compares a pinned file list with the current one. A change of kind,
// contents, executable bit or link target is "modified".
func Diff(old, now []File) Changes {
	var c Changes
	om := map[string]File{}
	for _, f := range old {
		om[f.Path] = f
	}
	nm := map[string]bool{}
	for _, f := range now {
		nm[f.Path] = true
		o, ok := om[f.Path]
		switch {
		case !ok:
			c.Added = append(c.Added, f.Path)
		case o != f:
			c.Modified = append(c.Modified, f.Path)
		}
	}
	for _, f := range old {
		if !nm[f.Path] {
			c.Removed = append(c.Removed, f.Path)
		}
	}
	sort.Strings(c.Added)
	sort.Strings(c.Removed)
	sort.Strings(c.Modified)
	return c
}
