package skill

import (
	"path"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"go.yaml.in/yaml/v3"
)

// Execution values of a manifest's "execution" field (Skillware #114).
const (
	// ExecInProcess runs the skill with the host interpreter or the
	// skill's environment (the default).
	ExecInProcess = "in_process"
	// ExecContainer runs the skill in the root file system of an OCI
	// image (the manifest's container block).
	ExecContainer = "container"
)

// Container is the manifest's "container" block: the image a skill with
// execution: container runs in. Exactly one of Image and Dockerfile is set.
type Container struct {
	// Image is the image reference as written: a registry reference
	// (registry.example/skills/pdf@sha256:...), or oci-archive:PATH,
	// docker-archive:PATH or oci:DIR with PATH relative to the bundle
	// (cleaned, never leaving it).
	Image string
	// Dockerfile is the bundle-relative path (cleaned) of a Dockerfile
	// built locally by an installed builder.
	Dockerfile string
	// Python is the absolute path, inside the image, of the interpreter
	// that runs the skill; empty means python3 on the image's PATH.
	Python string
}

// containerKeys are the container block's fields, for messages.
const containerKeys = "image, dockerfile, python"

// localTransports are the image reference prefixes that name a file or
// folder (of the bundle, for a manifest) rather than a registry.
var localTransports = []string{"oci-archive:", "docker-archive:", "oci:"}

// execution reads the "execution" field.
func (p *parser) execution(v *yaml.Node) string {
	s := p.str(v, "execution")
	switch s {
	case "", ExecInProcess, ExecContainer:
		return s
	}
	p.errorf(v, "execution", "unknown value %q (known: %s, %s)", s, ExecInProcess, ExecContainer)
	return ""
}

// container reads the "container" block.
func (p *parser) container(v *yaml.Node) *Container {
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		p.errorf(v, "container", "must be a mapping (%s), got %s", containerKeys, kindName(v))
		return nil
	}
	c := &Container{}
	var imageNode, dockerNode *yaml.Node
	for _, kv := range p.pairs(v, "container") {
		val := deref(kv.val)
		field := "container." + kv.key
		switch kv.key {
		case "image":
			imageNode = kv.keyNode
			s := p.str(val, field)
			if s == "" {
				if val.ShortTag() == "!!str" || isNull(val) {
					p.errorf(val, field, "must not be empty")
				}
				continue
			}
			if msg := checkImageRef(s); msg != "" {
				p.errorf(val, field, "%q: %s", s, msg)
				continue
			}
			c.Image = cleanImageRef(s)
		case "dockerfile":
			dockerNode = kv.keyNode
			s := p.str(val, field)
			if s == "" && val.ShortTag() != "!!str" && !isNull(val) {
				continue
			}
			clean, msg := cleanBundlePath(s)
			if msg != "" {
				p.errorf(val, field, "%q: %s", s, msg)
				continue
			}
			c.Dockerfile = clean
		case "python":
			s := p.str(val, field)
			if s == "" && val.ShortTag() != "!!str" && !isNull(val) {
				continue
			}
			if !strings.HasPrefix(s, "/") || path.Clean(s) != s || s == "/" || strings.ContainsAny(s, "\x00\n\r") {
				p.errorf(val, field, "%q: must be the absolute, clean path of the interpreter inside the image (/usr/local/bin/python3)", s)
				continue
			}
			c.Python = s
		default:
			p.errorf(kv.keyNode, "container", "unknown field %q (known: %s)", kv.key, containerKeys)
		}
	}
	switch {
	case imageNode != nil && dockerNode != nil:
		p.errorf(dockerNode, "container", "has both image and dockerfile; give one")
	case imageNode == nil && dockerNode == nil:
		p.errorf(v, "container", "needs image (a registry reference, oci-archive:PATH, docker-archive:PATH or oci:DIR) or dockerfile (a path in the bundle)")
	}
	return c
}

// checkImageRef checks an image reference a manifest may name: a local
// one's path stays inside the bundle; anything else is a registry
// reference. It returns "" or what is wrong.
func checkImageRef(s string) string {
	if strings.ContainsAny(s, "\x00\n\r") {
		return "holds a control character"
	}
	for _, t := range localTransports {
		p, ok := strings.CutPrefix(s, t)
		if !ok {
			continue
		}
		if p == "" {
			return "want " + t + "PATH, a path relative to the bundle"
		}
		if _, msg := cleanBundlePath(p); msg != "" {
			return "the path " + msg + " (a manifest's image path is relative to the bundle and stays inside it)"
		}
		return ""
	}
	if _, err := name.ParseReference(s); err != nil {
		return "not a registry reference, oci-archive:PATH, docker-archive:PATH or oci:DIR: " + err.Error()
	}
	return ""
}

// cleanImageRef cleans a checked reference's bundle path.
func cleanImageRef(s string) string {
	for _, t := range localTransports {
		if p, ok := strings.CutPrefix(s, t); ok {
			clean, _ := cleanBundlePath(p)
			return t + clean
		}
	}
	return s
}

// Containerized reports whether the manifest asks to run in a container
// (execution: container).
func (m *Manifest) Containerized() bool { return m.Execution == ExecContainer }
