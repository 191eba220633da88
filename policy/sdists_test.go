package policy

import (
	"slices"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/skill"
)

// sdists: the top-level setting, a skill's own overriding it, and only
// allow or refuse.
func TestParseSdists(t *testing.T) {
	p, err := Parse("p.yaml", []byte("sdists: allow\nskills:\n  a/wheels:\n    sdists: refuse\n  a/other: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Sdists != SdistsAllow || p.SdistsLine != 1 || !p.AllowsSdists("a/other") || !p.AllowsSdists("a/unlisted") || p.AllowsSdists("a/wheels") {
		t.Errorf("sdists: %+v", p)
	}
	p, err = Parse("p.yaml", []byte("skills:\n  a/src:\n    sdists: allow\n"))
	if err != nil || !p.AllowsSdists("a/src") || p.AllowsSdists("a/other") {
		t.Errorf("per skill: %+v %v", p, err)
	}
	if (*Policy)(nil).AllowsSdists("a/b") || (&Policy{}).AllowsSdists("a/b") {
		t.Error("no policy allows sdists")
	}
	for _, bad := range []string{"sdists: yes\n", "sdists: [allow]\n", "skills:\n  a/b:\n    sdists: always\n"} {
		if _, err := Parse("p.yaml", []byte(bad)); errdefs.KindOf(err) != errdefs.Invalid || !strings.Contains(err.Error(), "sdists") {
			t.Errorf("Parse(%q): %v, want invalid naming sdists", bad, err)
		}
	}
}

type envPins struct {
	fakeTrust
	set []string
}

func (e envPins) TrustedEnvironment(*skill.Skill) ([]string, bool) { return e.set, e.set != nil }

// A trust store that recorded an external skill's environment puts the
// set in the Decision, unless --trust-remote-code is what trusts it or
// the skill declares no requirements.
func TestEnvironmentPin(t *testing.T) {
	withReqs := base + "requirements: [alpha]\n"
	pins := envPins{fakeTrust{how: "pinned"}, []string{"alpha==1.0 sha256=aa"}}
	d, err := Decide(testSkill(t, skill.TierExternal, withReqs), Grants{Trust: pins}, env(nil))
	if err != nil || !slices.Equal(d.EnvironmentPin, pins.set) {
		t.Errorf("pinned: %v %v", d, err)
	}
	for name, g := range map[string]Grants{
		"--trust-remote-code": {Trust: pins, TrustRemoteCode: true},
		"no pin":              {Trust: envPins{fakeTrust{how: "pinned"}, nil}},
	} {
		if d, err := Decide(testSkill(t, skill.TierExternal, withReqs), g, env(nil)); err != nil || d.EnvironmentPin != nil {
			t.Errorf("%s: %v %v", name, d.EnvironmentPin, err)
		}
	}
	if d, err := Decide(testSkill(t, skill.TierExternal, base), Grants{Trust: pins}, env(nil)); err != nil || d.EnvironmentPin != nil {
		t.Errorf("no requirements: %v %v", d.EnvironmentPin, err)
	}
}
