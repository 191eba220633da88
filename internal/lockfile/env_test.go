package lockfile

import (
	"errors"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/errdefs"
)

// An environment that resolved to another set than the locked one is a
// drift naming the first difference; an entry without a recorded set, or
// the same set, passes.
func TestCheckEnvironment(t *testing.T) {
	l := New("skills.lock")
	l.Set("a/locked", Entry{Environment: []string{"beta==2.1 sha256=bb", "alpha==1.0 sha256=aa"}})
	l.Set("a/unrecorded", Entry{})
	for _, tc := range []struct {
		name, id string
		resolved []string
		want     string
	}{
		{"same", "a/locked", []string{"alpha==1.0 sha256=aa", "beta==2.1 sha256=bb"}, ""},
		{"no record", "a/unrecorded", []string{"alpha==1.0 sha256=aa"}, ""},
		{"newer", "a/locked", []string{"alpha==1.0 sha256=aa", "beta==2.2 sha256=cc"}, "it has beta==2.2 sha256=cc, not locked"},
		{"same version, other wheel", "a/locked", []string{"alpha==1.0 sha256=ff", "beta==2.1 sha256=bb"}, "it has alpha==1.0 sha256=ff"},
		{"fewer", "a/locked", []string{"alpha==1.0 sha256=aa"}, "it lacks the locked beta==2.1 sha256=bb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := l.CheckEnvironment(tc.id, tc.resolved)
			if tc.want == "" {
				if err != nil {
					t.Errorf("err = %v", err)
				}
				return
			}
			var de *errdefs.DeniedError
			if !errors.As(err, &de) || de.Permission != "lockfile environment" || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want a drift naming %q", err, tc.want)
			}
		})
	}
}
