package skill

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/skillbox-dev/skillbox/errdefs"
)

// Skillware's configuration files. The project file is looked for in the
// working directory and its parents (see FindRoots); the global one in
// $SKILLWARE_CONFIG_DIR, else $XDG_CONFIG_HOME/skillware, else
// ~/.config/skillware (%APPDATA%\skillware on Windows).
const (
	// ProjectConfigFile is the project configuration file's name.
	ProjectConfigFile = ".skillware.yaml"
	// GlobalConfigFile is the global configuration file's name.
	GlobalConfigFile = "config.yaml"
	// ConfigDirEnv names the folder holding the global configuration file.
	ConfigDirEnv = "SKILLWARE_CONFIG_DIR"
)

// maxConfigSize bounds a configuration file; real ones are a few hundred bytes.
const maxConfigSize = 1 << 20

// skillwareSections are the top-level keys Skillware reads besides the three
// that decide the roots; skillbox ignores them. Any other top-level key is
// reported as a warning (Skillware keeps unknown keys for later versions, so
// it is not an error, but a misspelt "path:" should not pass unseen).
var skillwareSections = map[string]bool{"mail": true, "presentation": true, "chains": true}

// ConfigValue is one setting and where it was written.
type ConfigValue struct {
	// Value is the setting as written (trimmed).
	Value string
	// File and Line locate it.
	File string
	Line int
}

// Config is the merge of Skillware's global and project configuration
// files, as far as it decides the skill roots. Later files win for project,
// order and the legacy switch; external paths accumulate.
type Config struct {
	// Files are the files read, global first.
	Files []string
	// Project is paths.project: nil or "auto" (any case) walks up from the
	// working directory for ./skills; anything else is the one project root.
	Project *ConfigValue
	// External lists paths.external of every file, global first, each
	// text once.
	External []ConfigValue
	// Order is resolution.order: the tiers in search order, bundled last
	// when not listed. Default project, external, bundled.
	Order []Tier
	// OrderFrom locates the resolution.order that set Order (zero: default).
	OrderFrom ConfigValue
	// HonorSkillPath is legacy.honor_skillware_skill_path (default true):
	// whether SKILLWARE_SKILL_PATH's roots join the external tier.
	HonorSkillPath bool
	// HonorFrom locates the switch (zero: default).
	HonorFrom ConfigValue
	// Warnings are problems that do not stop the roots from being built.
	Warnings []string
}

// defaultOrder is Skillware's resolution order when a configuration file
// exists and does not set one.
var defaultOrder = []Tier{TierProject, TierExternal, TierBundled}

// ProjectAuto reports whether the project tier is the walk up from the
// working directory for ./skills.
func (c *Config) ProjectAuto() bool {
	return c.Project == nil || strings.EqualFold(c.Project.Value, "auto") || c.Project.Value == ""
}

// configFile is what one file says; nil fields were not set.
type configFile struct {
	path     string
	project  *ConfigValue // Value "" for null: auto
	external []ConfigValue
	order    []Tier
	orderSet bool
	orderAt  int
	honor    *bool
	honorAt  int
	warnings []string
}

// readConfigFile reads and checks one configuration file strictly: wrong
// types, unknown keys in the sections skillbox reads, unknown tiers and
// duplicates are errdefs.Invalid with FILE:LINE.
func readConfigFile(path string) (*configFile, error) {
	f, err := openRegular(path)
	if err != nil {
		return nil, errdefs.Wrap(errdefs.Invalid, err, "Skillware configuration "+path)
	}
	defer f.Close()
	// At most one byte past the limit: the file may be a link to one that
	// never ends (/proc/self/pagemap is a regular file of size 0).
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, errdefs.Wrap(errdefs.Invalid, err, "Skillware configuration "+path)
	}
	return parseConfig(path, data)
}

func parseConfig(path string, data []byte) (*configFile, error) {
	p := &parser{file: path, budget: maxYAMLNodes}
	cf := &configFile{path: path}
	if len(data) > maxConfigSize {
		p.errorf(nil, "", "file is too large (%d bytes; the limit is %d)", len(data), maxConfigSize)
		return nil, p.err()
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return cf, nil // Skillware reads an empty file as {}
	}
	doc, ok := p.decodeYAML(data)
	if !ok {
		if isEmptyDocErr(p) {
			return cf, nil // only comments
		}
		return nil, p.err()
	}
	if len(doc.Content) == 0 {
		return cf, nil
	}
	root := deref(doc.Content[0])
	if isNull(root) {
		return cf, nil
	}
	if root.Kind != yaml.MappingNode {
		p.errorf(root, "", "top level must be a mapping (paths, resolution, legacy, ...), got %s", kindName(root))
		return nil, p.err()
	}
	for _, kv := range p.pairs(root, "") {
		v := deref(kv.val)
		switch kv.key {
		case "paths":
			cf.paths(p, v)
		case "resolution":
			cf.resolution(p, v)
		case "legacy":
			cf.legacy(p, v)
		default:
			if !skillwareSections[kv.key] {
				cf.warnings = append(cf.warnings, fmt.Sprintf("%s:%d: unknown top-level key %q (skillbox reads paths, resolution and legacy)", path, kv.keyNode.Line, kv.key))
			}
		}
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return cf, nil
}

// isEmptyDocErr reports whether the only problem decodeYAML found is an
// empty document (a file of comments).
func isEmptyDocErr(p *parser) bool {
	return p.errs.Len() == 1 && strings.HasSuffix(p.err().Error(), ": empty document")
}

// section returns the pairs of a section that must be a mapping (null: none).
func (cf *configFile) section(p *parser, v *yaml.Node, name string) []pair {
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		p.errorf(v, name, "must be a mapping, got %s", kindName(v))
		return nil
	}
	return p.pairs(v, name)
}

func (cf *configFile) paths(p *parser, v *yaml.Node) {
	for _, kv := range cf.section(p, v, "paths") {
		val := deref(kv.val)
		switch kv.key {
		case "project":
			if isNull(val) {
				cf.project = &ConfigValue{File: cf.path, Line: val.Line}
				continue
			}
			if val.ShortTag() != "!!str" {
				p.errorf(val, "paths.project", "must be a path or auto, got %s", kindName(val))
				continue
			}
			cf.project = &ConfigValue{Value: strings.TrimSpace(val.Value), File: cf.path, Line: val.Line}
		case "external":
			if isNull(val) {
				continue
			}
			if val.Kind != yaml.SequenceNode {
				p.errorf(val, "paths.external", "must be a list of paths, got %s", kindName(val))
				continue
			}
			for i, item := range val.Content {
				item = deref(item)
				f := fmt.Sprintf("paths.external[%d]", i)
				switch {
				case item.ShortTag() != "!!str":
					p.errorf(item, f, "must be a path (a string), got %s", kindName(item))
				case strings.TrimSpace(item.Value) == "":
					p.errorf(item, f, "must not be empty")
				default:
					cf.external = append(cf.external, ConfigValue{Value: strings.TrimSpace(item.Value), File: cf.path, Line: item.Line})
				}
			}
		default:
			p.errorf(kv.keyNode, "paths."+kv.key, "unknown key (paths has project and external)")
		}
	}
}

func (cf *configFile) resolution(p *parser, v *yaml.Node) {
	for _, kv := range cf.section(p, v, "resolution") {
		val := deref(kv.val)
		if kv.key != "order" {
			p.errorf(kv.keyNode, "resolution."+kv.key, "unknown key (resolution has order)")
			continue
		}
		cf.orderSet, cf.orderAt = true, kv.keyNode.Line
		if isNull(val) {
			continue // Skillware: the default order
		}
		if val.Kind != yaml.SequenceNode {
			p.errorf(val, "resolution.order", "must be a list of tiers (project, external, bundled), got %s", kindName(val))
			continue
		}
		if len(val.Content) == 0 {
			p.errorf(val, "resolution.order", "empty list; Skillware reads it as the default order (project, external, bundled): list the tiers, or remove the key")
			continue
		}
		seen := map[Tier]bool{}
		for i, item := range val.Content {
			item = deref(item)
			f := fmt.Sprintf("resolution.order[%d]", i)
			if item.ShortTag() != "!!str" {
				p.errorf(item, f, "must be project, external or bundled, got %s", kindName(item))
				continue
			}
			t := Tier(strings.ToLower(strings.TrimSpace(item.Value)))
			switch {
			case t != TierProject && t != TierExternal && t != TierBundled:
				p.errorf(item, f, "unknown tier %q; want project, external or bundled", item.Value)
			case seen[t]:
				p.errorf(item, f, "tier %s listed twice", t)
			default:
				seen[t] = true
				cf.order = append(cf.order, t)
			}
		}
		if !seen[TierBundled] {
			cf.order = append(cf.order, TierBundled) // bundled is always searched, last unless placed
		}
	}
}

func (cf *configFile) legacy(p *parser, v *yaml.Node) {
	for _, kv := range cf.section(p, v, "legacy") {
		val := deref(kv.val)
		if kv.key != "honor_skillware_skill_path" {
			p.errorf(kv.keyNode, "legacy."+kv.key, "unknown key (legacy has honor_skillware_skill_path)")
			continue
		}
		b, ok := yaml11Bool(val)
		if !ok {
			p.errorf(val, "legacy.honor_skillware_skill_path", "must be true or false, got %s", kindName(val))
			continue
		}
		cf.honor, cf.honorAt = &b, val.Line
	}
}

// yaml11Bool reads a boolean as Skillware's YAML 1.1 loader does: true and
// false, and the unquoted yes, no, on and off (in lower, title or upper case).
func yaml11Bool(n *yaml.Node) (b, ok bool) {
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!bool" && (n.ShortTag() != "!!str" || n.Style != 0)) {
		return false, false
	}
	switch n.Value {
	case "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON":
		return true, true
	case "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF":
		return false, true
	}
	return false, false
}

// mergeConfig merges files in order (global first) the way Skillware does.
func mergeConfig(files []*configFile) *Config {
	c := &Config{Order: defaultOrder, HonorSkillPath: true}
	seenExt := map[string]bool{}
	for _, f := range files {
		c.Files = append(c.Files, f.path)
		c.Warnings = append(c.Warnings, f.warnings...)
		if f.project != nil {
			pv := *f.project
			c.Project = &pv
		}
		for _, e := range f.external {
			if !seenExt[e.Value] {
				seenExt[e.Value] = true
				c.External = append(c.External, e)
			}
		}
		if f.orderSet {
			c.Order, c.OrderFrom = defaultOrder, ConfigValue{File: f.path, Line: f.orderAt}
			if len(f.order) > 0 {
				c.Order = f.order
			}
		}
		if f.honor != nil {
			c.HonorSkillPath, c.HonorFrom = *f.honor, ConfigValue{Value: fmt.Sprint(*f.honor), File: f.path, Line: f.honorAt}
		}
	}
	return c
}

// isFile reports whether p is a regular file (following symlinks).
func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}
