package policy

import (
	"strings"
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

// TestBuildImages: a Dockerfile skill's Spec lets the backend build its
// image on first use only when the operator says so — the grant (run/serve
// --build-images) or the policy file's build_images — and an image: skill
// never gets it (there is nothing to build).
func TestBuildImages(t *testing.T) {
	docker := base + "execution: container\ncontainer: {dockerfile: Dockerfile}\n"
	pol, err := Parse("p.yaml", []byte("build_images: true\n"))
	if err != nil || !pol.BuildsImages() || pol.BuildImagesLine != 1 {
		t.Fatalf("Parse: %+v, %v", pol, err)
	}
	for _, tt := range []struct {
		name     string
		manifest string
		g        Grants
		want     bool
	}{
		{"default", docker, Grants{}, false},
		{"flag", docker, Grants{BuildImages: true}, true},
		{"policy file", docker, Grants{Policy: pol}, true},
		{"image skill", base + "execution: container\ncontainer: {image: 'oci:img'}\n", Grants{BuildImages: true, Policy: pol}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Decide(testSkill(t, skill.TierProject, tt.manifest), tt.g, env(nil))
			if err != nil {
				t.Fatal(err)
			}
			if d.Spec.Container.Build != tt.want {
				t.Errorf("Spec.Container.Build = %v, want %v", d.Spec.Container.Build, tt.want)
			}
		})
	}
	for _, bad := range []string{"build_images: yes please\n", "build_images: [true]\n"} {
		if _, err := Parse("p.yaml", []byte(bad)); err == nil || !strings.Contains(err.Error(), "build_images") {
			t.Errorf("Parse(%q): %v, want an error naming build_images", bad, err)
		}
	}
}

// TestBuildNet: skills.ID.build_net grants hosts to the build of the
// skill's image on first use (Spec.Container.BuildNetwork), only when it
// may build, and never from the call's grants; bad hosts are refused at
// parse time, naming the field.
func TestBuildNet(t *testing.T) {
	docker := base + "execution: container\ncontainer: {dockerfile: Dockerfile}\nnetwork: [api.example.com]\n"
	pol, err := Parse("p.yaml", []byte("build_images: true\nskills:\n  cat/name:\n    net: [api.example.com]\n    build_net: [pypi.org, 'files.pythonhosted.org:443']\n"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := Decide(testSkill(t, skill.TierProject, docker), Grants{Policy: pol, Net: []string{"other.example.com"}}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := []sandbox.HostPort{{Host: "pypi.org"}, {Host: "files.pythonhosted.org", Port: 443}}
	if diff := cmp.Diff(want, d.Spec.Container.BuildNetwork); diff != "" {
		t.Errorf("BuildNetwork (-want +got):\n%s", diff)
	}
	// Without build_net, or when the call may not build, none.
	for _, g := range []Grants{{BuildImages: true, Net: []string{"api.example.com"}}, {Policy: &Policy{Skills: pol.Skills}}} {
		d, err := Decide(testSkill(t, skill.TierProject, docker), g, env(nil))
		if err != nil {
			t.Fatal(err)
		}
		if d.Spec.Container.BuildNetwork != nil {
			t.Errorf("%+v: BuildNetwork = %v, want none", g, d.Spec.Container.BuildNetwork)
		}
	}
	for _, bad := range []string{"skills:\n  cat/name:\n    build_net: ['http://x']\n", "skills:\n  cat/name:\n    build_net: ['pypi.org:99999']\n", "skills:\n  cat/name:\n    build_net: pypi.org\n"} {
		if _, err := Parse("p.yaml", []byte(bad)); err == nil || !strings.Contains(err.Error(), "build_net") {
			t.Errorf("Parse(%q): %v, want an error naming build_net", bad, err)
		}
	}
}
