// Package bundled materialises skillbox's own example skills, embedded in the
// binary, as a real folder that backends can mount read-only.
//
// The folder lives under the user's cache directory and is named by a hash of
// the embedded content, so a new binary with different skills never sees a
// stale copy, and a copy is written once and then only read.
package bundled

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// Materialize copies fsys into a content-named folder under cacheDir and
// returns its path. It is safe to call concurrently from several processes:
// the copy is made in a private temporary folder and renamed into place.
func Materialize(fsys fs.FS, cacheDir string) (string, error) {
	sum, err := hashFS(fsys)
	if err != nil {
		return "", fmt.Errorf("bundled skills: %w", err)
	}
	dst := filepath.Join(cacheDir, "bundled-"+sum[:16])
	if fi, err := os.Stat(dst); err == nil && fi.IsDir() {
		return dst, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("bundled skills: %w", err)
	}
	tmp, err := os.MkdirTemp(cacheDir, ".bundled-*")
	if err != nil {
		return "", fmt.Errorf("bundled skills: %w", err)
	}
	defer os.RemoveAll(tmp) // no-op after a successful rename
	if err := copyFS(fsys, tmp); err != nil {
		return "", fmt.Errorf("bundled skills: %w", err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", fmt.Errorf("bundled skills: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		// Another process won the race; its copy is identical.
		if fi, statErr := os.Stat(dst); statErr == nil && fi.IsDir() {
			return dst, nil
		}
		return "", fmt.Errorf("bundled skills: %w", err)
	}
	return dst, nil
}

func hashFS(fsys fs.FS) (string, error) {
	var paths []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(paths)
	h := sha256.New()
	for _, p := range paths {
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%d:%s%d:", len(p), p, len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func copyFS(fsys fs.FS, dst string) error {
	return fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dst, filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		src, err := fsys.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, src); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}
