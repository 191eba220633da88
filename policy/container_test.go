package policy

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/skill"
)

// TestContainerSpec: a manifest's container block reaches the Spec as
// written; a skill without one gets none.
func TestContainerSpec(t *testing.T) {
	d, err := Decide(testSkill(t, skill.TierProject, base+"execution: container\ncontainer: {image: 'oci:img', python: /usr/bin/python3}\n"), Grants{}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&sandbox.Container{Image: "oci:img", Python: "/usr/bin/python3"}, d.Spec.Container); diff != "" {
		t.Errorf("Spec.Container (-want +got):\n%s", diff)
	}
	d, err = Decide(testSkill(t, skill.TierProject, base), Grants{}, env(nil))
	if err != nil || d.Spec.Container != nil {
		t.Errorf("in-process skill: Container %+v, err %v", d.Spec.Container, err)
	}
}
