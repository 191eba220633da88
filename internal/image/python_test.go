package image

import (
	"strings"
	"testing"
)

func TestPythonInfo(t *testing.T) {
	for _, tt := range []struct {
		out, err, why string
	}{
		{out: "3.11.2 cpython\n"},
		{out: "3.8.0 cpython"},
		{out: "3.13.1 cpython\n"},
		{out: "3.7.17 cpython\n", why: "is CPython 3.7.17, older than 3.8"},
		{out: "2.7.18 unknown\n", why: "is unknown 2.7.18, not CPython"},
		{out: "3.10.13 pypy\n", why: "is PyPy 3.10.13, not CPython"},
		{out: "", err: "not a version line"},
		{out: "hello", err: "not a version line"},
		{out: "3.11 cpython", err: "not a version line"},
		{out: "3.11.x cpython", err: "not a version line"},
		{out: "3.11.2 c python", err: "not a version line"},
		{out: "99999999.1.1 cpython", err: "not a version line"},
		{out: strings.Repeat("x", 5000), err: "…"},
	} {
		info, err := ParsePythonInfo([]byte(tt.out))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParsePythonInfo(%q) = %+v, %v; want an error with %q", tt.out, info, err, tt.err)
			}
			if err != nil && len(err.Error()) > 300 {
				t.Errorf("ParsePythonInfo(%q): error of %d bytes: quote less", tt.out[:10], len(err.Error()))
			}
			continue
		}
		if err != nil {
			t.Errorf("ParsePythonInfo(%q): %v", tt.out, err)
			continue
		}
		if why := info.Supported(); why != tt.why {
			t.Errorf("%q: Supported() = %q, want %q", tt.out, why, tt.why)
		}
	}
}

func TestPythonRecord(t *testing.T) {
	img := &Image{Dir: t.TempDir()}
	if _, ok := img.PythonRecord("/usr/bin/python3"); ok {
		t.Fatal("a record in an image never probed")
	}
	a := PythonInfo{Version: "3.11.2", Implementation: "cpython"}
	b := PythonInfo{Version: "3.6.9", Implementation: "cpython"}
	if err := img.RecordPython("/usr/bin/python3", a); err != nil {
		t.Fatal(err)
	}
	if err := img.RecordPython("/opt/old/bin/python", b); err != nil {
		t.Fatal(err)
	}
	if got, ok := img.PythonRecord("/usr/bin/python3"); !ok || got != a {
		t.Errorf("record of /usr/bin/python3: %+v, %v", got, ok)
	}
	if got, ok := img.PythonRecord("/opt/old/bin/python"); !ok || got != b {
		t.Errorf("record of /opt/old/bin/python: %+v, %v", got, ok)
	}
	if _, ok := img.PythonRecord("/usr/bin/python3.11"); ok {
		t.Error("a record for a path never probed")
	}
}
