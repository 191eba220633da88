package trust

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
)

// An entry records its environment's resolved set, sorted; the store
// gives it (TrustedEnvironment) only while the entry trusts the bundle,
// keeps it across a save, and refuses a malformed one on open.
func TestPinEnvironment(t *testing.T) {
	dir := t.TempDir()
	sk := filepath.Join(dir, "skills", "a", "b")
	os.MkdirAll(sk, 0o755)
	os.WriteFile(filepath.Join(sk, "manifest.yaml"), []byte("name: b\nversion: \"1\"\ndescription: d\nrequirements: [alpha]\n"), 0o644)
	os.WriteFile(filepath.Join(sk, "skill.py"), []byte("x = 1\n"), 0o644)
	s := reload(t, sk)
	path := filepath.Join(dir, "trust.json")
	st, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PinEnvironment(s.ID, []string{"alpha==1.0"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("pin of an untrusted skill: %v", err)
	}
	if _, err := st.Trust(s, time.Now()); err != nil {
		t.Fatal(err)
	}
	set := []string{"beta==2.1 sha256=bb", "alpha==1.0 sha256=aa"}
	if err := st.PinEnvironment(s.ID, set); err != nil {
		t.Fatal(err)
	}
	if err := st.PinEnvironment(s.ID, []string{"alpha"}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("a malformed set: %v", err)
	}
	if err := st.Save(); err != nil {
		t.Fatal(err)
	}
	st, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := st.TrustedEnvironment(s)
	if want := []string{"alpha==1.0 sha256=aa", "beta==2.1 sha256=bb"}; !ok || !slices.Equal(got, want) {
		t.Errorf("TrustedEnvironment = %v %v, want %v", got, ok, want)
	}
	changed := *s
	changed.Digest = "sha256:" + strings.Repeat("0", 64)
	if _, ok := st.TrustedEnvironment(&changed); ok {
		t.Error("an entry that no longer trusts the bundle gave its environment")
	}
	data, _ := os.ReadFile(path)
	os.WriteFile(path, []byte(strings.Replace(string(data), `"alpha==1.0 sha256=aa"`, `"zeta==1.0"`, 1)), 0o600)
	if _, err := Open(path); !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "out of order") {
		t.Errorf("an unsorted set: %v", err)
	}
}
