//go:build linux

package linux

import (
	"testing"

	"github.com/skillbox-dev/skillbox/sandbox"
)

var execModes = []string{ExecZygote, ExecCold}

func TestHello(t *testing.T) {
	for _, mode := range execModes {
		t.Run(mode, func(t *testing.T) {
			dir := bundle(t, `        import yaml
        return {"hello": params.get("name"), "uid": os.getuid(), "pid": os.getpid(), "cwd": os.getcwd(), "yaml": yaml.__name__}`)
			sb := openBox(t, Options{Exec: mode}, sandbox.Spec{BundleDir: dir})
			res, err := call(t, sb, map[string]any{"name": "world"})
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			v := value(t, res)
			t.Logf("%v stderr=%q", v, res.Stderr)
			if v["hello"] != "world" || v["uid"] == float64(0) || v["cwd"] != "/scratch" {
				t.Errorf("got %v", v)
			}
		})
	}
}
