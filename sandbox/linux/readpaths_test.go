//go:build linux

package linux

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// TestReadPaths checks that an operator-granted host path is readable at
// the same path in the jail, not writable, and that its host siblings stay
// invisible; and that a path over the jail's own folders is refused.
func TestReadPaths(t *testing.T) {
	host := t.TempDir()
	os.Chmod(host, 0o755)
	granted := filepath.Join(host, "granted")
	os.Mkdir(granted, 0o755)
	os.WriteFile(filepath.Join(granted, "data.txt"), []byte("shared"), 0o644)
	os.WriteFile(filepath.Join(host, "sibling.txt"), []byte("secret"), 0o644)
	body := `        def t(fn):
            try:
                return fn()
            except OSError as e:
                return "ERR " + type(e).__name__
        g = ` + "\"" + granted + "\"" + `
        return {"read": t(lambda: open(g + "/data.txt").read()),
                "write": t(lambda: open(g + "/new", "w").write("x")),
                "sibling": t(lambda: open(g + "/../sibling.txt").read())}`
	for _, mode := range execModes {
		t.Run(mode, func(t *testing.T) {
			sb := openBox(t, Options{Exec: mode}, sandbox.Spec{BundleDir: bundle(t, body), ReadPaths: []string{granted}})
			res, err := call(t, sb, nil)
			if err != nil {
				t.Fatal(err)
			}
			v := value(t, res)
			if v["read"] != "shared" || v["write"] == float64(1) || v["sibling"] == "secret" {
				t.Errorf("got %v: want the granted file readable, not writable, its sibling hidden", v)
			}
		})
	}
	_, err := New(Options{}).Open(t.Context(), sandbox.Spec{BundleDir: bundle(t, "        return {}"), ReadPaths: []string{"/proc/1"}})
	if !errors.Is(err, errdefs.ErrUnsupported) {
		t.Errorf("read path /proc/1: err = %v, want unsupported", err)
	}
}
