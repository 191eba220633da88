package bench

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// pidSkill answers with its params and the pid of the process that made
// the call, and logs the pid of each process that imports it.
const pidSkill = `import os
from skillware.core.base_skill import BaseSkill

with open(os.path.join(os.path.dirname(__file__), "imports.log"), "a") as f:
    f.write("%d\n" % os.getpid())

class PidSkill(BaseSkill):
    @property
    def manifest(self):
        return {"name": "pid"}

    def execute(self, params):
        return {"nonce": params["nonce"], "pid": os.getpid()}
`

// TestDriverHTTP checks the Driver's two servers: http calls the skill
// imported once in the server; http-fork imports it in a fresh child per
// call and never in the server.
func TestDriverHTTP(t *testing.T) {
	exe, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3 here")
	}
	for _, fork := range []bool{false, true} {
		t.Run("fork="+strconv.FormatBool(fork), func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "skill.py"), []byte(pidSkill), 0o644); err != nil {
				t.Fatal(err)
			}
			url, server, stop, err := Python{Exe: exe, Dir: dir}.StartHTTP(fork)
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			var pids []int
			for i := range 3 {
				nonce := "n" + strconv.Itoa(i)
				resp, err := http.Post(url, "application/json", strings.NewReader(`{"nonce":"`+nonce+`"}`))
				if err != nil {
					t.Fatal(err)
				}
				var got struct {
					Nonce string
					Pid   int
				}
				err = json.NewDecoder(resp.Body).Decode(&got)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK || got.Nonce != nonce {
					t.Fatalf("call %d: status %d, %+v, %v", i, resp.StatusCode, got, err)
				}
				pids = append(pids, got.Pid)
			}
			b, err := os.ReadFile(filepath.Join(dir, "imports.log"))
			if err != nil {
				t.Fatal(err)
			}
			var imports []int
			for _, f := range strings.Fields(string(b)) {
				n, _ := strconv.Atoi(f)
				imports = append(imports, n)
			}
			if !fork {
				if want := []int{server, server, server}; !slices.Equal(pids, want) || !slices.Equal(imports, []int{server}) {
					t.Errorf("calls in %v, imports in %v; want every call and the one import in the server %d", pids, imports, server)
				}
				return
			}
			if !slices.Equal(imports, pids) || slices.Contains(pids, server) || len(slices.Compact(slices.Sorted(slices.Values(pids)))) != 3 {
				t.Errorf("calls in %v, imports in %v; want each call in a child of its own that imported the skill, never the server %d", pids, imports, server)
			}
		})
	}
}
