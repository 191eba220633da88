package skill

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestContainerManifest(t *testing.T) {
	tests := []struct {
		name string
		src  string
		exec string
		want *Container
	}{
		{"absent", "", "", nil},
		{"in_process", "execution: in_process\n", ExecInProcess, nil},
		{"registry", "execution: container\ncontainer:\n  image: registry.example/skills/pdf@sha256:" + strings.Repeat("a", 64) + "\n",
			ExecContainer, &Container{Image: "registry.example/skills/pdf@sha256:" + strings.Repeat("a", 64)}},
		{"tag and python", "execution: container\ncontainer: {image: 'python:3.12', python: /usr/local/bin/python3}\n",
			ExecContainer, &Container{Image: "python:3.12", Python: "/usr/local/bin/python3"}},
		{"oci layout cleaned", "execution: container\ncontainer: {image: 'oci:./img/../image'}\n",
			ExecContainer, &Container{Image: "oci:image"}},
		{"oci archive", "execution: container\ncontainer: {image: 'oci-archive:image.tar'}\n",
			ExecContainer, &Container{Image: "oci-archive:image.tar"}},
		{"docker archive", "execution: container\ncontainer: {image: 'docker-archive:d/image.tar'}\n",
			ExecContainer, &Container{Image: "docker-archive:d/image.tar"}},
		{"dockerfile", "execution: container\ncontainer: {dockerfile: ./Dockerfile}\n",
			ExecContainer, &Container{Dockerfile: "Dockerfile"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseManifest([]byte(head + tt.src))
			if err != nil {
				t.Fatal(err)
			}
			if m.Execution != tt.exec {
				t.Errorf("Execution = %q, want %q", m.Execution, tt.exec)
			}
			if diff := cmp.Diff(tt.want, m.Container); diff != "" {
				t.Errorf("Container (-want +got):\n%s", diff)
			}
			if m.Containerized() != (tt.exec == ExecContainer) {
				t.Errorf("Containerized() = %v", m.Containerized())
			}
			if _, ok := m.Extra["container"]; ok {
				t.Error("container kept as an unknown field")
			}
		})
	}
}

func TestContainerManifestErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"unknown execution", "execution: docker\n", `manifest.yaml:4: execution: unknown value "docker" (known: in_process, container)`},
		{"no block", "execution: container\n", "manifest.yaml:4: execution: container needs a container block"},
		{"block without execution", "container: {image: 'python:3'}\n", `manifest.yaml:4: container: is only read with execution: container (execution is "in_process")`},
		{"not a mapping", "execution: container\ncontainer: python:3\n", "manifest.yaml:5: container: must be a mapping (image, dockerfile, python), got a string"},
		{"unknown key", "execution: container\ncontainer: {image: 'python:3', entrypoint: x}\n", `manifest.yaml:5: container: unknown field "entrypoint" (known: image, dockerfile, python)`},
		{"both", "execution: container\ncontainer: {image: 'python:3', dockerfile: Dockerfile}\n", "container: has both image and dockerfile; give one"},
		{"neither", "execution: container\ncontainer: {python: /usr/bin/python3}\n", "container: needs image"},
		{"empty image", "execution: container\ncontainer: {image: ''}\n", "container.image: must not be empty"},
		{"image escapes", "execution: container\ncontainer: {image: 'oci-archive:../x.tar'}\n", `container.image: "oci-archive:../x.tar": the path escapes the bundle`},
		{"image absolute", "execution: container\ncontainer: {image: 'oci:/var/lib/img'}\n", `container.image: "oci:/var/lib/img": the path must be relative to the bundle`},
		{"image empty path", "execution: container\ncontainer: {image: 'docker-archive:'}\n", "want docker-archive:PATH"},
		{"bad registry ref", "execution: container\ncontainer: {image: 'Not A Ref!'}\n", "not a registry reference"},
		{"image not a string", "execution: container\ncontainer: {image: [a]}\n", "container.image: must be a string, got a sequence"},
		{"dockerfile absolute", "execution: container\ncontainer: {dockerfile: /etc/Dockerfile}\n", "container.dockerfile: \"/etc/Dockerfile\": must be relative to the bundle"},
		{"dockerfile escapes", "execution: container\ncontainer: {dockerfile: ../Dockerfile}\n", "escapes the bundle"},
		{"python relative", "execution: container\ncontainer: {image: 'python:3', python: bin/python3}\n", "container.python: \"bin/python3\": must be the absolute, clean path"},
		{"python unclean", "execution: container\ncontainer: {image: 'python:3', python: /usr/../bin/python3}\n", "must be the absolute, clean path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseManifest([]byte(head + tt.src))
			if err == nil {
				t.Fatal("parsed")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n%v\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

func TestContainerJSONBuiltInCode(t *testing.T) {
	m := &Manifest{Name: "a", Version: "1", Description: "d", Execution: ExecContainer,
		Container: &Container{Image: "oci:image", Python: "/usr/bin/python3"}}
	got := string(m.JSON())
	for _, want := range []string{`"execution":"container"`, `"container":{"image":"oci:image","python":"/usr/bin/python3"}`} {
		if !strings.Contains(got, want) {
			t.Errorf("JSON %s lacks %s", got, want)
		}
	}
}
