package jailbuild

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/skillenv"
	"github.com/skillbox-dev/skillbox/internal/skillenv/envtest"
)

// buildSdist builds an environment of the sdist name, whose build backend
// evaluates module (envtest.BuiltSdist) in the build's jail, with sdists
// allowed and a 64 MiB size limit; it returns the cache and the error.
func buildSdist(t *testing.T, name, module string) (*skillenv.Cache, error) {
	t.Helper()
	py := need(t)
	dists := t.TempDir()
	envtest.BuiltSdist(t, dists, name, "1.0", module)
	url, _ := envtest.Index(t, dists)
	c := &skillenv.Cache{Dir: filepath.Join(t.TempDir(), "envs"), Builder: Builder{},
		Bounds: skillenv.Bounds{MaxBytes: 64 << 20, Timeout: 3 * time.Minute}}
	req := request(t, py, url, name)
	req.Sdists = true
	_, err := c.Ensure(context.Background(), req, nil)
	return c, err
}

// leftNothing fails unless the cache folder holds no environment and no
// build folder.
func leftNothing(t *testing.T, c *skillenv.Cache) {
	t.Helper()
	ents, _ := os.ReadDir(c.Dir)
	for _, e := range ents {
		if e.IsDir() {
			t.Errorf("the failed build left %s in the cache", e.Name())
		}
	}
}

// A build whose package leaves a symbolic link named skillbox-env.json
// (the record the host writes) at the environment's root is refused; the
// host never writes through it to the file it names.
func TestBuildRefusesTheRecordsName(t *testing.T) {
	victim := filepath.Join(t.TempDir(), "profile.sh")
	c, err := buildSdist(t, "hostile", fmt.Sprintf(
		`(os.symlink(%q, os.path.join(__import__("sys").prefix, "skillbox-env.json")), "X = 1\n")[1]`, victim))
	if err == nil || errdefs.KindOf(err) != errdefs.Unavailable || !strings.Contains(err.Error(), "the environment holds skillbox-env.json, a name skillbox writes itself") {
		t.Errorf("error %v, want unavailable naming skillbox-env.json", err)
	}
	if _, err := os.Lstat(victim); err == nil {
		t.Errorf("the host wrote %s through the build's link", victim)
	}
	leftNothing(t, c)
}

// A build whose package leaves a symbolic link that leads out of the
// environment (the host follows some of its paths when a jail shows
// them) is refused, naming the link.
func TestBuildRefusesLinksOut(t *testing.T) {
	out := t.TempDir()
	c, err := buildSdist(t, "linker", fmt.Sprintf(
		`(os.symlink(%q, os.path.join(__import__("sys").prefix, "lib", "outside")), "X = 1\n")[1]`, out))
	if err == nil || errdefs.KindOf(err) != errdefs.Unavailable || !strings.Contains(err.Error(), "symbolic link lib/outside -> "+out+", which leads out of it") {
		t.Errorf("error %v, want unavailable naming the link", err)
	}
	leftNothing(t, c)
}

// Files count at their full size against the environment's size limit:
// sparse files (no pages in the build's tmpfs, but the copy out writes
// their holes as zeros) and hard links to one file (each copied) cannot
// make the host's copy larger than MaxBytes; the build fails naming the
// limit and leaves nothing behind.
func TestBuildCountsFullSizes(t *testing.T) {
	for name, module := range map[string]string{
		"sparse": `([open(os.path.join(__import__("sys").prefix, "sparse%d.bin" % i), "wb").truncate(500 << 20) for i in range(4)], "X = 1\n")[1]`,
		"links": `(open(os.path.join(__import__("sys").prefix, "big.bin"), "wb").write(b"x" * (20 << 20)),
		  [os.link(os.path.join(__import__("sys").prefix, "big.bin"), os.path.join(__import__("sys").prefix, "big%d.bin" % i)) for i in range(4)], "X = 1\n")[2]`,
	} {
		t.Run(name, func(t *testing.T) {
			c, err := buildSdist(t, name, module)
			if err == nil || errdefs.KindOf(err) != errdefs.Unavailable || !strings.Contains(err.Error(), "add up to more than its size limit of 64MiB") {
				t.Errorf("error %v, want unavailable naming the 64 MiB limit", err)
			}
			leftNothing(t, c)
		})
	}
}
