package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/internal/jail/stage"
)

// TestInitStageSkipsHeavyInits re-executes this test binary, which links
// what the skillbox binary links, as the jail's init stage (given a
// descriptor that is not open, it fails at once, exit 125) and reads the
// runtime's init trace: the stage's init must run before the packages
// whose inits are heavy, so that the stage, which execs from its init,
// never runs theirs. It fails when an import added to internal/jail/stage
// makes it wait for them (see stage's init).
func TestInitStageSkipsHeavyInits(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "99")
	cmd.Args[0] = stage.Arg0
	cmd.Env = []string{"GODEBUG=inittrace=1"}
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 125 {
		t.Fatalf("init stage on a closed descriptor: %v, want exit 125; output:\n%s", err, out)
	}
	var inited []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "init" {
			inited = append(inited, f[1])
		}
	}
	if len(inited) == 0 {
		t.Fatalf("no init trace:\n%s", out)
	}
	for _, heavy := range []string{
		"github.com/santhosh-tekuri/jsonschema/v6",
		"github.com/google/jsonschema-go/jsonschema",
		"github.com/modelcontextprotocol/go-sdk/mcp",
		"github.com/google/go-containerregistry/pkg/name",
		"go.yaml.in/yaml/v3",
		"net/http",
	} {
		for _, p := range inited {
			if p == heavy {
				t.Errorf("the init stage initialized %s before it exec'd", heavy)
			}
		}
	}
	t.Logf("the init stage initialized %d packages", len(inited))
}
