package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/skillbox-dev/skillbox/errdefs"
)

// ent is one entry of a hand-made layer.
type ent struct {
	name, link, body string
	typ              byte
	mode             int64
	size             int64 // declared size when not len(body)
	pax              map[string]string
	mtime            time.Time
}

func file(name, body string) ent { return ent{name: name, body: body, typ: tar.TypeReg, mode: 0o644} }
func dir(name string) ent        { return ent{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, target string) ent {
	return ent{name: name, link: target, typ: tar.TypeSymlink, mode: 0o777}
}
func hardlink(name, target string) ent {
	return ent{name: name, link: target, typ: tar.TypeLink, mode: 0o644}
}

// tarBytes writes entries as a tar stream. A declared size larger than the
// body leaves the stream cut short after the body (no tar end).
func tarBytes(t *testing.T, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, PAXRecords: e.pax, ModTime: e.mtime, Format: tar.FormatPAX}
		if h.ModTime.IsZero() {
			h.ModTime = time.Unix(1700000000, 0)
		}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
			if e.size != 0 {
				h.Size = e.size
			}
		}
		if e.typ == tar.TypeChar || e.typ == tar.TypeBlock {
			h.Devmajor, h.Devminor = 1, 3
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.body != "" {
			if _, err := io.WriteString(tw, e.body); err != nil {
				t.Fatal(err)
			}
		}
		if e.size > int64(len(e.body)) {
			return buf.Bytes() // cut short
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func layer(t *testing.T, ents ...ent) v1.Layer {
	t.Helper()
	b := tarBytes(t, ents...)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// imageOf makes a linux image of this architecture from layers.
func imageOf(t *testing.T, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", hostArch()
	cf.Config.Env = []string{"PATH=/usr/bin", "LD_PRELOAD=/evil.so"}
	cf.Config.WorkingDir, cf.Config.User = "/app", "1000"
	cf.Config.Entrypoint = []string{"python3"}
	cf.Created = v1.Time{Time: time.Unix(1700000000, 0)}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func unpack(t *testing.T, lim Limits, layers ...v1.Layer) (string, Stats, error) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rootfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	st, err := Unpack(context.Background(), imageOf(t, layers...), dir, lim, nil)
	return dir, st, err
}

func mustUnpack(t *testing.T, layers ...v1.Layer) (string, Stats) {
	t.Helper()
	dir, st, err := unpack(t, Limits{}, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return dir, st
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func randName(t *testing.T) string {
	b := make([]byte, 8)
	rand.Read(b)
	return "skillbox-escape-" + hex.EncodeToString(b)
}

func wantKind(t *testing.T, err error, k errdefs.Kind, substr string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s", k)
	}
	if errdefs.KindOf(err) != k || !strings.Contains(err.Error(), substr) {
		t.Fatalf("error %q (kind %s), want kind %s containing %q", err, errdefs.KindOf(err), k, substr)
	}
}

func TestUnpackSymlinkToHostFolderStaysInside(t *testing.T) {
	n := randName(t)
	for _, tc := range []struct {
		name string
		ents []ent
		// inside is where the file must land, relative to the root.
		inside string
	}{
		{"absolute link", []ent{symlink("evil", "/etc"), file("evil/"+n, "x")}, "etc/" + n},
		{"dotdot link", []ent{symlink("evil", "../../../../../../../../etc"), file("evil/"+n, "x")}, "etc/" + n},
		{"link chain", []ent{dir("a"), symlink("a/b", "../c"), symlink("c", "/../../etc"), file("a/b/"+n, "x")}, "etc/" + n},
		{"link in later layer's path", []ent{symlink("usr", "/etc"), dir("usr/lib"), file("usr/lib/"+n, "x")}, "etc/lib/" + n},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, _ := mustUnpack(t, layer(t, tc.ents...))
			if !exists(filepath.Join(root, tc.inside)) {
				t.Errorf("%s is not inside the root", tc.inside)
			}
			for _, host := range []string{"/etc/" + n, "/etc/lib/" + n} {
				if exists(host) {
					os.Remove(host)
					t.Fatalf("wrote %s on the host", host)
				}
			}
		})
	}
}

func TestUnpackSymlinkAcrossLayers(t *testing.T) {
	n := randName(t)
	root, _ := mustUnpack(t,
		layer(t, symlink("var/run", "/run"), symlink("escape", "/tmp")),
		layer(t, file("var/run/app.pid", "1"), file("escape/"+n, "x")))
	if got := readFile(t, filepath.Join(root, "run/app.pid")); got != "1" {
		t.Errorf("run/app.pid = %q", got)
	}
	if !exists(filepath.Join(root, "tmp", n)) || exists(filepath.Join("/tmp", n)) {
		t.Fatalf("file through an absolute link to /tmp: inside %v, on host %v", exists(filepath.Join(root, "tmp", n)), exists(filepath.Join("/tmp", n)))
	}
}

func TestUnpackReplacesLinkInsteadOfWritingThrough(t *testing.T) {
	n := randName(t)
	host := filepath.Join(t.TempDir(), n)
	if err := os.WriteFile(host, []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	root, _ := mustUnpack(t, layer(t, symlink("f", host)), layer(t, file("f", "image")))
	if got := readFile(t, host); got != "host" {
		t.Fatalf("host file now %q", got)
	}
	if fi, err := os.Lstat(filepath.Join(root, "f")); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("f is not a regular file: %v %v", fi, err)
	}
}

func TestUnpackRefusesEscapingNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		e    ent
	}{
		{"dotdot", file("../../"+randName(t), "x")},
		{"dotdot inside", file("a/../../"+randName(t), "x")},
		{"hard link dotdot", hardlink("l", "../../etc/passwd")},
		{"hard link absolute outside", hardlink("l", "/etc/passwd")},
		{"hard link through link", hardlink("l", "etc2/passwd")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := unpack(t, Limits{}, layer(t, symlink("etc2", "/etc"), tc.e))
			wantKind(t, err, errdefs.Invalid, "")
		})
	}
}

func TestUnpackAbsoluteNamesLandInside(t *testing.T) {
	n := randName(t)
	root, _ := mustUnpack(t, layer(t, file("/tmp/"+n, "x"), file("./rel", "y")))
	if !exists(filepath.Join(root, "tmp", n)) || exists("/tmp/"+n) {
		t.Fatal("an absolute name did not land inside the root")
	}
	if !exists(filepath.Join(root, "rel")) {
		t.Fatal("./rel missing")
	}
}

func TestUnpackWhiteouts(t *testing.T) {
	root, _ := mustUnpack(t,
		layer(t, dir("a"), file("a/x", "x"), file("a/y", "y"), file("b", "b"), dir("c"), file("c/deep", "d")),
		layer(t, file("a/.wh.x", ""), file(".wh.b", ""), file(".wh.c", ""), file("nothere/.wh.z", "")))
	for p, want := range map[string]bool{"a/x": false, "a/y": true, "b": false, "c": false, "a/.wh.x": false, ".wh.b": false} {
		if exists(filepath.Join(root, p)) != want {
			t.Errorf("%s exists = %v, want %v", p, !want, want)
		}
	}
}

func TestUnpackWhiteoutNamesNothingIsRefused(t *testing.T) {
	_, _, err := unpack(t, Limits{}, layer(t, file("a/.wh.", "")))
	wantKind(t, err, errdefs.Invalid, "whiteout")
}

func TestUnpackWhiteoutThroughLinkStaysInside(t *testing.T) {
	host := t.TempDir()
	keep := filepath.Join(host, "keep")
	if err := os.WriteFile(keep, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	mustUnpack(t, layer(t, symlink("h", host)), layer(t, file("h/.wh.keep", "")), layer(t, symlink("o", host)), layer(t, file("o/.wh..wh..opq", "")))
	if !exists(keep) {
		t.Fatal("a whiteout through a link removed a host file")
	}
}

// A path MaxDepth levels deep unpacks; one level more is refused (the
// caps' test).
func TestUnpackDeepestPath(t *testing.T) {
	name := strings.Repeat("a/", MaxDepth-1) + "f"
	root, _ := mustUnpack(t, layer(t, file(name, "deep"), file(strings.Repeat("a/", MaxDepth-2)+"b/g", "")))
	if got := readFile(t, filepath.Join(root, name)); got != "deep" {
		t.Errorf("%d levels deep: %q", MaxDepth, got)
	}
}

func TestUnpackOpaqueDirs(t *testing.T) {
	root, _ := mustUnpack(t,
		layer(t, dir("d"), file("d/old", "o"), dir("d/sub"), file("d/sub/f", "f"), file("other", "k")),
		layer(t, dir("d"), file("d/before", "b"), file("d/.wh..wh..opq", ""), file("d/after", "a")))
	for p, want := range map[string]bool{"d/old": false, "d/sub": false, "d/before": true, "d/after": true, "other": true, "d/.wh..wh..opq": false} {
		if exists(filepath.Join(root, p)) != want {
			t.Errorf("%s exists = %v, want %v", p, !want, want)
		}
	}
	// The layer's own entries deeper down stay, even in a folder a lower
	// layer made and even before the marker; the lower layer's go.
	root, _ = mustUnpack(t,
		layer(t, dir("d"), dir("d/sub"), file("d/sub/old", "o"), dir("d/sub/deeper"), file("d/sub/deeper/old", "o")),
		layer(t, file("d/sub/deeper/new", "n"), file("d/.wh..wh..opq", ""), file("d/sub/after", "a")))
	for p, want := range map[string]bool{"d/sub/old": false, "d/sub/deeper/old": false, "d/sub/deeper/new": true, "d/sub/after": true} {
		if exists(filepath.Join(root, p)) != want {
			t.Errorf("%s exists = %v, want %v", p, !want, want)
		}
	}
	// Opaque markers named again, and one inside another, act once: they
	// are applied when the layer has been read, each folder once (before,
	// each marker walked the layer's folder again: 100,000 of them in a
	// 1 MB layer took hours).
	root, _ = mustUnpack(t,
		layer(t, dir("d"), file("d/old", "o"), dir("d/sub"), file("d/sub/old", "o"), file("e/old", "o")),
		layer(t, file("d/.wh..wh..opq", ""), file("d/sub/.wh..wh..opq", ""), file("d/sub/new", "n"), file("d/.wh..wh..opq", ""), file("e/.wh..wh..opq", ""), file("e/.wh..wh..opq", "")))
	for p, want := range map[string]bool{"d/old": false, "d/sub/old": false, "d/sub/new": true, "e/old": false, "e": true} {
		if exists(filepath.Join(root, p)) != want {
			t.Errorf("%s exists = %v, want %v", p, !want, want)
		}
	}
}

func TestUnpackHardLinks(t *testing.T) {
	root, _ := mustUnpack(t, layer(t, file("usr/bin/python3.12", "py"), hardlink("usr/bin/python3", "usr/bin/python3.12")), layer(t, hardlink("/py", "/usr/bin/python3")))
	a, _ := os.Stat(filepath.Join(root, "usr/bin/python3.12"))
	for _, p := range []string{"usr/bin/python3", "py"} {
		b, err := os.Stat(filepath.Join(root, p))
		if err != nil || !os.SameFile(a, b) {
			t.Errorf("%s is not a hard link to usr/bin/python3.12: %v", p, err)
		}
	}
}

func TestUnpackSkipsSpecialFilesAndStripsBits(t *testing.T) {
	root, st := mustUnpack(t, layer(t,
		ent{name: "dev/null", typ: tar.TypeChar, mode: 0o666},
		ent{name: "dev/sda", typ: tar.TypeBlock, mode: 0o660},
		ent{name: "fifo", typ: tar.TypeFifo, mode: 0o644},
		ent{name: "usr/bin/su", body: "#!", typ: tar.TypeReg, mode: 0o4755},
		ent{name: "usr/bin/wall", body: "#!", typ: tar.TypeReg, mode: 0o2755},
		ent{name: "world", body: "w", typ: tar.TypeReg, mode: 0o777},
		ent{name: "tmp", typ: tar.TypeDir, mode: 0o1777},
		ent{name: "ro", typ: tar.TypeDir, mode: 0o555},
		ent{name: "usr/bin/ping", body: "#!", typ: tar.TypeReg, mode: 0o755, pax: map[string]string{"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00"}},
	), layer(t, file("ro/later", "written after a read-only folder")))
	for _, p := range []string{"dev/null", "dev/sda", "fifo"} {
		if exists(filepath.Join(root, p)) {
			t.Errorf("%s was created", p)
		}
	}
	if st.Devices != 2 || st.Fifos != 1 || st.SetID != 3 || st.Xattrs != 1 {
		t.Errorf("stats %+v, want 2 devices, 1 fifo, 3 set-id/sticky, 1 xattrs", st)
	}
	for p, want := range map[string]os.FileMode{"usr/bin/su": 0o755, "usr/bin/wall": 0o755, "world": 0o755, "tmp": os.ModeDir | 0o755, "ro": os.ModeDir | 0o755, "ro/later": 0o644} {
		fi, err := os.Lstat(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode() & (os.ModeType | os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky); got != want {
			t.Errorf("%s mode %v, want %v", p, got, want)
		}
	}
	checkNoXattrs(t, filepath.Join(root, "usr/bin/ping"))
}

func TestUnpackKeepsTimes(t *testing.T) {
	mt := time.Unix(1600000000, 0)
	root, _ := mustUnpack(t, layer(t, ent{name: "lib/mod.py", body: "x = 1", typ: tar.TypeReg, mode: 0o644, mtime: mt}))
	fi, err := os.Stat(filepath.Join(root, "lib/mod.py"))
	if err != nil || !fi.ModTime().Equal(mt) {
		t.Fatalf("mtime %v, want %v (%v)", fi.ModTime(), mt, err)
	}
}

func TestUnpackCaps(t *testing.T) {
	many := make([]ent, 30)
	for i := range many {
		many[i] = file("f"+strings.Repeat("x", i), "")
	}
	big := strings.Repeat("A", 64<<10)
	for _, tc := range []struct {
		name   string
		lim    Limits
		layers func(t *testing.T) []v1.Layer
		want   string
	}{
		{"tar bomb over the byte cap", Limits{MaxBytes: 32 << 10}, func(t *testing.T) []v1.Layer { return []v1.Layer{layer(t, file("bomb", big))} }, "MaxBytes"},
		{"many small files over the byte cap", Limits{MaxBytes: 100 << 10}, func(t *testing.T) []v1.Layer {
			return []v1.Layer{layer(t, file("a", big)), layer(t, file("b", big))}
		}, "MaxBytes"},
		{"too many files", Limits{MaxFiles: 10}, func(t *testing.T) []v1.Layer { return []v1.Layer{layer(t, many...)} }, "MaxFiles"},
		{"huge declared size", Limits{}, func(t *testing.T) []v1.Layer {
			return []v1.Layer{layer(t, ent{name: "huge", body: "tiny", typ: tar.TypeReg, mode: 0o644, size: 1 << 40})}
		}, "MaxBytes"},
		{"too deep", Limits{}, func(t *testing.T) []v1.Layer {
			return []v1.Layer{layer(t, file(strings.Repeat("a/", MaxDepth)+"f", ""))}
		}, "MaxDepth"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := unpack(t, tc.lim, tc.layers(t)...)
			wantKind(t, err, errdefs.Limit, tc.want)
		})
	}
}

// lyingLayer's content is not what its diff id says.
type lyingLayer struct{ v1.Layer }

func (l lyingLayer) Uncompressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(tarBytesNoT(file("swapped", "evil")))), nil
}

func tarBytesNoT(e ent) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Size: int64(len(e.body))})
	io.WriteString(tw, e.body)
	tw.Close()
	return buf.Bytes()
}

func TestUnpackChecksDiffIDs(t *testing.T) {
	_, _, err := unpack(t, Limits{}, lyingLayer{layer(t, file("honest", "x"))})
	wantKind(t, err, errdefs.Invalid, "diff id")
}

func TestUnpackGarbageLayer(t *testing.T) {
	b := []byte(strings.Repeat("not a tar ", 100))
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = unpack(t, Limits{}, l)
	wantKind(t, err, errdefs.Invalid, "")
}

func TestUnpackCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Unpack(ctx, imageOf(t, layer(t, file("a", "x"))), t.TempDir(), Limits{}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want canceled", err)
	}
}

// zstdFrameLayer is a layer whose blob is one zstd frame holding body as a raw
// block, with the window its header asks for (2^windowLog bytes).
func zstdFrameLayer(t *testing.T, windowLog int, body []byte) v1.Layer {
	t.Helper()
	frame := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, byte((windowLog - 10) << 3)}
	v := 1 | len(body)<<3 // the last block, raw
	frame = append(append(frame, byte(v), byte(v>>8), byte(v>>16)), body...)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(frame)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// A zstd layer is decoded with a window of at most MaxZstdWindow: one that
// asks for more is refused (kind limit). Before, go-containerregistry's
// decoder took the 512 MiB a 2 KB layer's header asked for (~0.5 GiB of
// memory per layer). One within the cap unpacks.
func TestUnpackZstdWindowBounded(t *testing.T) {
	body := tarBytes(t, file("x", "hello"))
	root, _ := mustUnpack(t, zstdFrameLayer(t, 20, body))
	if got := readFile(t, filepath.Join(root, "x")); got != "hello" {
		t.Errorf("a zstd layer with a 1 MiB window: x = %q", got)
	}
	_, _, err := unpack(t, Limits{}, zstdFrameLayer(t, 29, body))
	wantKind(t, err, errdefs.Limit, "MaxZstdWindow")
}

// Every removal (a whiteout, even of nothing, or a replaced entry) clears
// the cache of resolved folders. Resolving a deep folder afresh must cost
// a step per level, not a walk from the root per level: a small layer
// alternating a whiteout and a file 128 folders deep kept a CPU busy for
// minutes (2,000 pairs here took over two minutes; 200,000 entries,
// hours).
func TestUnpackDeepPathsAfterRemovalsStayLinear(t *testing.T) {
	deep := strings.Repeat("d/", MaxDepth-1)
	ents := []ent{file(deep+"first", "x")}
	for i := range 2000 {
		ents = append(ents, ent{name: ".wh.gone", typ: tar.TypeReg, mode: 0o644}, file(fmt.Sprintf("%sf%d", deep, i), "x"))
	}
	img := imageOf(t, layer(t, ents...))
	dir := filepath.Join(t.TempDir(), "rootfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A bound against a hang only: this takes seconds.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := Unpack(ctx, img, dir, Limits{}, nil)
	if err != nil {
		t.Fatalf("unpack: %v (%d entries read)", err, st.Files)
	}
	if !exists(filepath.Join(dir, deep+"f1999")) {
		t.Fatal("the last file is missing")
	}
}
