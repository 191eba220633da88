package trust

import (
	"fmt"
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

// DigestFiles computes the bundle digest of a file list with
// skill.DigestEntries, as skill.Digest does. It lets the store check that a file list matches its digest,
// and lets signatures cover a bundle without its own signature file.
func DigestFiles(files []File) string {
	entries := make([]skill.FileEntry, 0, len(files))
	for _, f := range files {
		e := skill.FileEntry{Path: f.Path, Size: f.Size, SHA256: f.SHA256, Target: f.Target}
		switch f.Kind {
		case "d":
			e.Mode = skill.ModeDir
		case "l":
			e.Mode = skill.ModeSymlink
		case "x":
			e.Mode = skill.ModeExec
		case "f":
			e.Mode = skill.ModeFile
		default:
			return "sha256:invalid-file-kind" // never a bundle's digest; validated lists have none
		}
		entries = append(entries, e)
	}
	return skill.DigestEntries(entries)
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
