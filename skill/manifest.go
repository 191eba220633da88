package skill

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/skillbox-dev/skillbox/internal/hostport"
	"github.com/skillbox-dev/skillbox/internal/yamlerr"
)

// ManifestFile is the name of the manifest inside a bundle.
const ManifestFile = "manifest.yaml"

// maxManifestSize bounds the manifest file; real manifests are a few KiB.
const maxManifestSize = 1 << 20

// maxYAMLNodes bounds the work done converting the YAML tree, so that
// alias bombs ("billion laughs") cannot expand without limit.
const maxYAMLNodes = 100_000

// Manifest is a parsed manifest.yaml.
//
// Known fields are decoded into typed fields; every other top-level field is
// kept, converted to JSON-compatible values, in Extra. The zero value is an
// empty (and invalid) manifest.
type Manifest struct {
	// Name is the skill's name; Skillware expects it to equal the folder
	// name or the whole id (category/name).
	Name string
	// Version is the skill's version text ("0.1.0"). A YAML number is kept as
	// written ("1.0").
	Version string
	// Description says what the skill does (shown to the model).
	Description string
	// ShortDescription is an optional one-liner for UIs.
	ShortDescription string
	// Issuer is a string or a mapping (converted to map[string]any), or nil.
	Issuer any
	// Category is the optional category the manifest claims.
	Category string
	// Parameters is the JSON Schema (an object) of the call parameters, or
	// nil when the manifest has none. See ParametersJSON.
	Parameters map[string]any
	// Outputs is the "outputs" field as written (JSON-compatible), or nil.
	Outputs any
	// Output is the older singular "output" field, or nil.
	Output any
	// Inputs is the template's "inputs" field, or nil.
	Inputs any
	// Constitution is the skill's behavioural rules for the agent.
	Constitution string
	// EnvVars lists the declared environment variables in manifest order,
	// whatever shape the manifest used.
	EnvVars []EnvVar
	// Requirements lists Python requirement specifiers ("pyyaml>=6.0").
	Requirements []string
	// Presentation is the optional UI presentation mapping.
	Presentation map[string]any
	// Permissions is skillbox's extension block; zero when absent.
	Permissions Permissions
	// Execution is "execution" as written: "" (absent), ExecInProcess or
	// ExecContainer.
	Execution string
	// Container is the "container" block, set exactly when Execution is
	// ExecContainer.
	Container *Container
	// Extra holds the unknown top-level fields, kept and otherwise ignored.
	Extra map[string]any

	// raw is the whole document as JSON-compatible values, and rawJSON
	// that document rendered, once, when the manifest was parsed: JSON is
	// on every call's path (the policy's Spec).
	raw     map[string]any
	rawJSON json.RawMessage
}

// EnvVar is one declared environment variable.
type EnvVar struct {
	// Name is the variable's name.
	Name string
	// Description says what it is for; may be empty.
	Description string
	// Required reports whether the skill cannot work without it. It is false
	// unless the manifest says "required: true".
	Required bool
}

// Permissions is the manifest's "permissions" block: what the skill asks for.
// It grants nothing by itself; policy intersects it with operator grants.
// The zero value asks for nothing.
type Permissions struct {
	// Block reports whether the manifest has a "permissions" key at all
	// (even an empty one). Skillware manifests have none; see HasBlock.
	Block bool
	// Network lists requested destinations: "host", "host:port" or
	// "*.domain[:port]".
	Network []string
	// Env lists the environment variables the skill asks to receive. When the
	// manifest has no "env" entry it defaults to the names in env_vars.
	Env []string
	// EnvSet reports whether "env" was given explicitly (even as []).
	EnvSet bool
	// FilesystemRead lists bundle-relative paths (cleaned, slash-separated)
	// the skill reads; they never escape the bundle.
	FilesystemRead []string
	// Limits holds the requested resource limits; zero fields mean "default".
	Limits Limits
}

// HasBlock reports whether the manifest has a permissions block: Block, or,
// for a manifest made in code (which leaves Block unset), any field of one.
// A skill without a block (an unmodified Skillware manifest) requests
// nothing, so policy gives it the operator's grants for it as they are
// (policy.Grants.Undeclared) instead of intersecting them with a request.
func (p Permissions) HasBlock() bool {
	return p.Block || p.EnvSet || len(p.Network) > 0 || len(p.FilesystemRead) > 0 || p.Limits != (Limits{})
}

// Limits are resource limits requested by a manifest. Zero means unset.
type Limits struct {
	// Timeout bounds one call ("30s"; a bare integer is seconds).
	Timeout time.Duration
	// Memory bounds memory use in bytes ("256MiB"; see ParseSize).
	Memory int64
	// Pids bounds the number of processes/threads.
	Pids int
	// Output bounds the size of a call's result in bytes.
	Output int64
}

// ParametersJSON returns Parameters as JSON. A manifest without parameters
// yields {"type":"object","properties":{}}, the schema of a call that takes
// none, which every tool-calling API accepts.
func (m *Manifest) ParametersJSON() json.RawMessage {
	if m.Parameters == nil {
		return json.RawMessage(`{"type":"object","properties":{}}`)
	}
	b, err := json.Marshal(m.Parameters)
	if err != nil {
		return nil // unreachable for parsed manifests: values are JSON-compatible
	}
	return b
}

// knownFields are the top-level fields the parser reads; every other field
// is kept in Extra.
var knownFields = []string{"name", "version", "description", "short_description", "category",
	"constitution", "issuer", "parameters", "outputs", "output", "inputs", "env_vars",
	"requirements", "presentation", "permissions", "execution", "container"}

// misspelledFields warns of unknown top-level fields that look like a
// known one misspelled ("paramters"): Skillware manifests may carry fields
// of their own, which are kept, but a misspelled "parameters" or
// "permissions" would silently drop a schema or a request.
func (m *Manifest) misspelledFields() []string {
	var out []string
	for key := range m.Extra {
		if len(key) < 4 || slices.Contains(knownFields, key) {
			continue
		}
		for _, f := range knownFields {
			if editDistance(strings.ToLower(key), f) <= typoEdits(f) {
				out = append(out, fmt.Sprintf("manifest.yaml: unknown field %q is ignored; did you mean %q?", key, f))
				break
			}
		}
	}
	sort.Strings(out)
	if len(out) > maxMisspelledWarnings {
		// Every call carries its skill's warnings (its answer, the audit
		// record): a manifest of thousands of case variants of known
		// fields made each record megabytes long.
		n := len(out) - maxMisspelledWarnings
		out = append(out[:maxMisspelledWarnings], fmt.Sprintf("manifest.yaml: %d more unknown fields look like known ones misspelled, and are ignored", n))
	}
	return out
}

// maxMisspelledWarnings is how many misspelled fields are named one by one.
const maxMisspelledWarnings = 8

// JSON renders the whole manifest, known and unknown fields, as a JSON
// object. For a parsed manifest this is the document as written (env_vars in
// its original shape, the permissions block as given), except that version is
// always a string; for a Manifest built in
// code it is assembled from the fields. It returns nil only if a value built
// in code cannot be represented in JSON. A parsed manifest's is rendered
// once and shared: the caller must not modify it.
func (m *Manifest) JSON() json.RawMessage {
	if m.rawJSON != nil {
		return m.rawJSON
	}
	doc := m.raw
	if doc == nil {
		doc = m.fieldsMap()
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil
	}
	return b
}

// fieldsMap builds a document from the typed fields, for manifests made in code.
func (m *Manifest) fieldsMap() map[string]any {
	doc := make(map[string]any, len(m.Extra)+16)
	for k, v := range m.Extra {
		doc[k] = v
	}
	set := func(k string, v any, ok bool) {
		if ok {
			doc[k] = v
		}
	}
	set("name", m.Name, m.Name != "")
	set("version", m.Version, m.Version != "")
	set("description", m.Description, m.Description != "")
	set("short_description", m.ShortDescription, m.ShortDescription != "")
	set("issuer", m.Issuer, m.Issuer != nil)
	set("category", m.Category, m.Category != "")
	set("parameters", m.Parameters, m.Parameters != nil)
	set("outputs", m.Outputs, m.Outputs != nil)
	set("output", m.Output, m.Output != nil)
	set("inputs", m.Inputs, m.Inputs != nil)
	set("constitution", m.Constitution, m.Constitution != "")
	set("requirements", m.Requirements, m.Requirements != nil)
	set("presentation", m.Presentation, m.Presentation != nil)
	set("execution", m.Execution, m.Execution != "")
	if c := m.Container; c != nil {
		block := map[string]any{}
		set := func(k, v string) {
			if v != "" {
				block[k] = v
			}
		}
		set("image", c.Image)
		set("dockerfile", c.Dockerfile)
		set("python", c.Python)
		doc["container"] = block
	}
	if len(m.EnvVars) > 0 {
		ev := make(map[string]any, len(m.EnvVars))
		for _, e := range m.EnvVars {
			ev[e.Name] = map[string]any{"description": e.Description, "required": e.Required}
		}
		doc["env_vars"] = ev
	}
	return doc
}

// ParseManifest parses and validates the bytes of a manifest.yaml.
//
// Required fields: name, version and description (Skillware requires all
// three). Errors are of kind errdefs.Invalid and read
// "manifest.yaml:LINE: FIELD: problem"; when several fields are bad, all are
// reported, one per line, ordered by line.
func ParseManifest(data []byte) (*Manifest, error) {
	return parseManifest(ManifestFile, data)
}

// fieldError is one validation problem at a line (0: no line).

// parser collects the errors of one manifest.
type parser struct {
	file   string
	errs   yamlerr.List
	budget int
	spent  bool // budget exhaustion already reported
}

func (p *parser) errorf(n *yaml.Node, field, format string, args ...any) {
	p.errs.Add(n, field, format, args...)
}

func (p *parser) err() error {
	p.errs.File = p.file
	return p.errs.Err()
}

// decodeYAML parses data into a document node, turning yaml's errors (and,
// defensively, its panics) into line-numbered messages.
func (p *parser) decodeYAML(data []byte) (doc *yaml.Node, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			p.errorf(nil, "", "YAML syntax error: %v", r)
			doc, ok = nil, false
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var d yaml.Node
	if err := dec.Decode(&d); err != nil {
		if errors.Is(err, io.EOF) {
			p.errorf(nil, "", "empty document")
		} else {
			p.yamlError(err)
		}
		return nil, false
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		p.yamlError(err)
		return nil, false
	default:
		p.errorf(&next, "", "more than one YAML document; a manifest is a single mapping")
		return nil, false
	}
	return &d, true
}

func (p *parser) yamlError(err error) { p.errs.Syntax(err) }

func parseManifest(file string, data []byte) (*Manifest, error) {
	p := &parser{file: file, budget: maxYAMLNodes}
	if len(data) > maxManifestSize {
		p.errorf(nil, "", "file is too large (%d bytes; the limit is %d)", len(data), maxManifestSize)
		return nil, p.err()
	}
	if len(bytes.TrimSpace(data)) == 0 {
		p.errorf(nil, "", "empty file; a manifest needs at least name, version and description")
		return nil, p.err()
	}
	doc, ok := p.decodeYAML(data)
	if !ok {
		return nil, p.err()
	}
	if len(doc.Content) == 0 {
		p.errorf(doc, "", "empty document")
		return nil, p.err()
	}
	root := deref(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		p.errorf(root, "", "top level must be a mapping of fields, got %s", kindName(root))
		return nil, p.err()
	}
	m := &Manifest{}
	raw, _ := p.toAny(root, "").(map[string]any)
	m.raw = raw

	seen := map[string]*yaml.Node{}
	for _, kv := range p.pairs(root, "") {
		key, v := kv.key, deref(kv.val)
		seen[key] = kv.keyNode
		switch key {
		case "name":
			m.Name = p.str(v, key)
			if m.Name != "" && strings.TrimSpace(m.Name) == "" {
				m.Name = ""
			}
			if m.Name == "" && v.ShortTag() == "!!str" {
				p.errorf(v, key, "must not be empty")
			}
		case "version":
			m.Version = p.version(v)
		case "description":
			m.Description = p.str(v, key)
			if strings.TrimSpace(m.Description) == "" && v.ShortTag() == "!!str" {
				p.errorf(v, key, "must not be empty")
			}
		case "short_description":
			m.ShortDescription = p.str(v, key)
		case "category":
			m.Category = p.str(v, key)
		case "constitution":
			m.Constitution = p.str(v, key)
		case "issuer":
			switch {
			case isNull(v):
			case v.Kind == yaml.MappingNode || v.ShortTag() == "!!str":
				m.Issuer = p.toAny(v, key)
			default:
				p.errorf(v, key, "must be a string or a mapping, got %s", kindName(v))
			}
		case "parameters":
			m.Parameters = p.parameters(v)
		case "outputs":
			m.Outputs = p.toAny(v, key)
		case "output":
			m.Output = p.toAny(v, key)
		case "inputs":
			m.Inputs = p.toAny(v, key)
		case "env_vars":
			m.EnvVars = p.envVars(v)
		case "requirements":
			m.Requirements = p.strings(v, key, false)
			p.oneLineItems(v, key)
			p.requirementsCap(v, key, m.Requirements)
		case "presentation":
			if !isNull(v) {
				if v.Kind != yaml.MappingNode {
					p.errorf(v, key, "must be a mapping, got %s", kindName(v))
				} else {
					m.Presentation, _ = p.toAny(v, key).(map[string]any)
				}
			}
		case "permissions":
			m.Permissions = p.permissions(v)
			m.Permissions.Block = true
		case "execution":
			m.Execution = p.execution(v)
		case "container":
			m.Container = p.container(v)
		default:
			if m.Extra == nil {
				m.Extra = map[string]any{}
			}
			m.Extra[key] = p.toAny(v, key)
		}
	}
	for _, f := range []struct {
		name  string
		value string
	}{{"name", m.Name}, {"version", m.Version}, {"description", m.Description}} {
		if _, ok := seen[f.name]; !ok || (f.value == "" && isNull(valueOf(root, f.name))) {
			p.errorf(root, f.name, "required field is missing")
		}
	}
	switch c := valueOf(root, "container"); {
	case m.Execution == ExecContainer && (c == nil || isNull(deref(c))):
		p.errorf(valueOf(root, "execution"), "execution", "container needs a container block naming image or dockerfile")
	case m.Execution != ExecContainer && c != nil && !isNull(deref(c)):
		p.errorf(c, "container", "is only read with execution: container (execution is %q)", cmp.Or(m.Execution, ExecInProcess))
	}
	if !m.Permissions.EnvSet {
		for _, e := range m.EnvVars {
			m.Permissions.Env = append(m.Permissions.Env, e.Name)
		}
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	if m.raw != nil {
		m.raw["version"] = m.Version // as written: 1.0 stays "1.0", not 1
		m.rawJSON, _ = json.Marshal(m.raw)
	}
	return m, nil
}

// valueOf returns the value node of key in mapping n, or nil.
func valueOf(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if deref(n.Content[i]).Value == key {
			return deref(n.Content[i+1])
		}
	}
	return nil
}

func (p *parser) version(v *yaml.Node) string {
	if isNull(v) {
		return ""
	}
	switch v.ShortTag() {
	case "!!str", "!!int", "!!float":
		if strings.TrimSpace(v.Value) == "" {
			p.errorf(v, "version", "must not be empty")
		}
		return v.Value
	}
	p.errorf(v, "version", "must be a string such as \"1.0.0\", got %s", kindName(v))
	return ""
}

func (p *parser) parameters(v *yaml.Node) map[string]any {
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		p.errorf(v, "parameters", "must be a mapping (JSON Schema object), got %s", kindName(v))
		return nil
	}
	if t := valueOf(v, "type"); t != nil {
		if t.ShortTag() != "!!str" || t.Value != "object" {
			p.errorf(t, "parameters.type", "must be \"object\" (the parameters are a JSON object), got %s", describe(t))
		}
	}
	out, _ := p.toAny(v, "parameters").(map[string]any)
	return out
}

var envName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`) })

// envVars accepts the three shapes of env_vars: a mapping of name to
// {description, required} (Skillware's), a list of names, or a list of
// {name, description, required}.
func (p *parser) envVars(v *yaml.Node) []EnvVar {
	if isNull(v) {
		return nil
	}
	var out []EnvVar
	seen := map[string]bool{}
	add := func(n *yaml.Node, field string, e EnvVar) {
		switch {
		case !envName().MatchString(e.Name):
			p.errorf(n, field, "%q is not a valid environment variable name (letters, digits, _; not starting with a digit)", e.Name)
		case seen[e.Name]:
			p.errorf(n, field, "%s is declared twice", e.Name)
		default:
			seen[e.Name] = true
			out = append(out, e)
		}
	}
	switch v.Kind {
	case yaml.MappingNode:
		for _, kv := range p.pairs(v, "env_vars") {
			field := "env_vars." + kv.key
			e := EnvVar{Name: kv.key}
			p.envDetails(deref(kv.val), field, &e, false)
			add(kv.keyNode, "env_vars", e)
		}
	case yaml.SequenceNode:
		for i, item := range v.Content {
			item = deref(item)
			field := fmt.Sprintf("env_vars[%d]", i)
			switch {
			case item.ShortTag() == "!!str":
				add(item, field, EnvVar{Name: item.Value})
			case item.Kind == yaml.MappingNode:
				var e EnvVar
				if !p.envDetails(item, field, &e, true) {
					continue
				}
				add(item, field, e)
			default:
				p.errorf(item, field, "must be a name or a mapping {name, description, required}, got %s", kindName(item))
			}
		}
	default:
		p.errorf(v, "env_vars", "must be a mapping of NAME: {description, required} or a list, got %s", kindName(v))
	}
	return out
}

// envDetails decodes {name?, description, required} into e. It reports
// whether the entry is usable.
func (p *parser) envDetails(v *yaml.Node, field string, e *EnvVar, wantName bool) bool {
	if isNull(v) {
		return !wantName
	}
	if v.ShortTag() == "!!str" && !wantName {
		e.Description = v.Value // NAME: "what it is for"
		return true
	}
	if v.Kind != yaml.MappingNode {
		p.errorf(v, field, "must be a mapping {description, required}, got %s", kindName(v))
		return false
	}
	hasName := false
	for _, kv := range p.pairs(v, field) {
		val := deref(kv.val)
		switch kv.key {
		case "name":
			if wantName {
				hasName = true
				e.Name = p.str(val, field+".name")
				continue
			}
		case "description":
			e.Description = p.str(val, field+".description")
			continue
		case "required":
			if isNull(val) {
				continue
			}
			if val.ShortTag() != "!!bool" {
				p.errorf(val, field+".required", "must be true or false, got %s", describe(val))
				continue
			}
			e.Required = val.Value == "true" || val.Value == "True" || val.Value == "TRUE"
			continue
		}
		// Other keys (e.g. "default", "secret") are documentation; keep quiet.
	}
	if wantName && (!hasName || e.Name == "") {
		p.errorf(v, field, "missing name")
		return false
	}
	return true
}

var permissionKeys = "network, env, filesystem, limits"

func (p *parser) permissions(v *yaml.Node) Permissions {
	var perms Permissions
	if isNull(v) {
		return perms
	}
	if v.Kind != yaml.MappingNode {
		p.errorf(v, "permissions", "must be a mapping (%s), got %s", permissionKeys, kindName(v))
		return perms
	}
	for _, kv := range p.pairs(v, "permissions") {
		val := deref(kv.val)
		field := "permissions." + kv.key
		switch kv.key {
		case "network":
			for i, h := range p.strings(val, field, true) {
				if msg := checkHost(h); msg != "" {
					p.errorf(itemNode(val, i), fmt.Sprintf("%s[%d]", field, i), "%q: %s", h, msg)
					continue
				}
				perms.Network = append(perms.Network, h)
			}
		case "env":
			perms.EnvSet = true
			perms.Env = []string{}
			for i, e := range p.strings(val, field, true) {
				if !envName().MatchString(e) {
					p.errorf(itemNode(val, i), fmt.Sprintf("%s[%d]", field, i), "%q is not a valid environment variable name", e)
					continue
				}
				perms.Env = append(perms.Env, e)
			}
		case "filesystem":
			perms.FilesystemRead = p.filesystem(val, field)
		case "limits":
			perms.Limits = p.limits(val, field)
		default:
			p.errorf(kv.keyNode, "permissions", "unknown field %q (known: %s)", kv.key, permissionKeys)
		}
	}
	return perms
}

func (p *parser) filesystem(v *yaml.Node, field string) []string {
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		p.errorf(v, field, "must be a mapping such as {read: [\"data/\"]}, got %s", kindName(v))
		return nil
	}
	var out []string
	for _, kv := range p.pairs(v, field) {
		val := deref(kv.val)
		if kv.key != "read" {
			p.errorf(kv.keyNode, field, "unknown field %q (known: read; host paths are granted by the operator, not the manifest)", kv.key)
			continue
		}
		for i, s := range p.strings(val, field+".read", true) {
			clean, msg := cleanBundlePath(s)
			if msg != "" {
				p.errorf(itemNode(val, i), fmt.Sprintf("%s.read[%d]", field, i), "%q: %s", s, msg)
				continue
			}
			out = append(out, clean)
		}
	}
	return out
}

// cleanBundlePath cleans a bundle-relative path; msg is non-empty if the path
// is absolute, escapes the bundle or holds a control character (a newline
// in a path shown to the operator would add a line of its own to the trust
// review).
func cleanBundlePath(s string) (clean, msg string) {
	if strings.TrimSpace(s) == "" {
		return "", "must not be empty"
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		return "", noControls
	}
	s = strings.ReplaceAll(s, "\\", "/")
	if strings.HasPrefix(s, "/") || (len(s) >= 2 && s[1] == ':') || strings.HasPrefix(s, "~") {
		return "", "must be relative to the bundle, not an absolute path"
	}
	c := path.Clean(s)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", "escapes the bundle"
	}
	return c, ""
}

func (p *parser) limits(v *yaml.Node, field string) Limits {
	var l Limits
	if isNull(v) {
		return l
	}
	if v.Kind != yaml.MappingNode {
		p.errorf(v, field, "must be a mapping {timeout, memory, pids, output}, got %s", kindName(v))
		return l
	}
	for _, kv := range p.pairs(v, field) {
		val := deref(kv.val)
		f := field + "." + kv.key
		if isNull(val) {
			continue
		}
		switch kv.key {
		case "timeout":
			switch val.ShortTag() {
			case "!!str":
				d, err := time.ParseDuration(strings.TrimSpace(val.Value))
				if err != nil {
					p.errorf(val, f, "%q is not a duration such as \"30s\" or \"2m\"", val.Value)
				} else if d <= 0 {
					p.errorf(val, f, "must be positive, got %q", val.Value)
				} else {
					l.Timeout = d
				}
			case "!!int":
				var n int64
				if err := val.Decode(&n); err != nil || n <= 0 || n > int64(math.MaxInt64/time.Second) {
					p.errorf(val, f, "must be a positive number of seconds or a duration such as \"30s\", got %s", val.Value)
				} else {
					l.Timeout = time.Duration(n) * time.Second
				}
			default:
				p.errorf(val, f, "must be a duration such as \"30s\", got %s", kindName(val))
			}
		case "memory":
			l.Memory = p.size(val, f)
		case "output":
			l.Output = p.size(val, f)
		case "pids":
			var n int64
			if val.ShortTag() != "!!int" || val.Decode(&n) != nil {
				p.errorf(val, f, "must be a positive integer, got %s", describe(val))
			} else if n <= 0 || n > math.MaxInt32 {
				p.errorf(val, f, "must be between 1 and %d, got %d", math.MaxInt32, n)
			} else {
				l.Pids = int(n)
			}
		default:
			p.errorf(kv.keyNode, field, "unknown field %q (known: timeout, memory, pids, output)", kv.key)
		}
	}
	return l
}

func (p *parser) size(v *yaml.Node, field string) int64 {
	var n int64
	switch v.ShortTag() {
	case "!!str", "!!int":
		var err error
		n, err = ParseSize(v.Value)
		if err != nil {
			p.errorf(v, field, "%v", err)
			return 0
		}
	default:
		p.errorf(v, field, "must be a size such as \"256MiB\", got %s", kindName(v))
		return 0
	}
	if n == 0 {
		p.errorf(v, field, "must be positive, got %q", v.Value)
	}
	return n
}

// checkHost validates a network entry: host, host:port, *.domain[:port],
// an IPv6 address bare or in brackets, [ipv6]:port — the syntax of
// internal/hostport, which policy and the egress proxy read too. It
// returns a problem, or "".
func checkHost(s string) string {
	if _, err := hostport.Parse(s); err != nil {
		return err.Error()
	}
	return ""
}

// str decodes a string field; null is "".
func (p *parser) str(v *yaml.Node, field string) string {
	if isNull(v) {
		return ""
	}
	if v.ShortTag() != "!!str" {
		p.errorf(v, field, "must be a string, got %s", kindName(v))
		return ""
	}
	return v.Value
}

// strings decodes a list of non-empty strings. With single, a lone string
// counts as a one-element list.
func (p *parser) strings(v *yaml.Node, field string, single bool) []string {
	if isNull(v) {
		return nil
	}
	if single && v.ShortTag() == "!!str" {
		return []string{v.Value}
	}
	if v.Kind != yaml.SequenceNode {
		p.errorf(v, field, "must be a list of strings, got %s", kindName(v))
		return nil
	}
	out := []string{}
	for i, item := range v.Content {
		item = deref(item)
		f := fmt.Sprintf("%s[%d]", field, i)
		if item.ShortTag() != "!!str" {
			p.errorf(item, f, "must be a string, got %s", kindName(item))
			out = append(out, "") // keep indexes aligned with the nodes
			continue
		}
		if strings.TrimSpace(item.Value) == "" {
			p.errorf(item, f, "must not be empty")
		}
		out = append(out, item.Value)
	}
	if p.hasEmpty(out) {
		clean := out[:0:0]
		for _, s := range out {
			if strings.TrimSpace(s) != "" {
				clean = append(clean, s)
			}
		}
		return clean
	}
	return out
}

func (p *parser) hasEmpty(s []string) bool {
	for _, x := range s {
		if strings.TrimSpace(x) == "" {
			return true
		}
	}
	return false
}

// itemNode returns the i-th element of a sequence (or v itself for a lone
// scalar), for error lines.
// oneLineItems reports each string of the list v that holds a control
// character: shown one per line (inspect, the trust review), a newline
// would add lines of its own.
func (p *parser) oneLineItems(v *yaml.Node, field string) {
	if v.Kind != yaml.SequenceNode {
		return
	}
	for i, item := range v.Content {
		if item = deref(item); item.ShortTag() == "!!str" && strings.ContainsFunc(item.Value, unicode.IsControl) {
			p.errorf(item, fmt.Sprintf("%s[%d]", field, i), "%q: %s", item.Value, noControls)
		}
	}
}

// Caps on a manifest's requirements: each becomes an argument of pip in
// the environment's build and a line of its record, and all of them of
// messages. Skills declare a handful; a list past these is a mistake or an
// attempt on the build.
const (
	MaxRequirements     = 256
	MaxRequirementBytes = 64 << 10 // all of them together
)

// requirementsCap refuses more than MaxRequirements requirements, or more
// than MaxRequirementBytes of them in all (each is also capped at 1024
// bytes when it is parsed).
func (p *parser) requirementsCap(v *yaml.Node, field string, reqs []string) {
	total := 0
	for _, r := range reqs {
		total += len(r)
	}
	switch {
	case len(reqs) > MaxRequirements:
		p.errorf(v, field, "%d requirements, more than %d", len(reqs), MaxRequirements)
	case total > MaxRequirementBytes:
		p.errorf(v, field, "%d bytes in all, more than %s", total, FormatSize(MaxRequirementBytes))
	}
}

// noControls is the complaint about a control character in a manifest's
// one-line text.
const noControls = "must not hold control characters (a newline, a tab, ...)"

func itemNode(v *yaml.Node, i int) *yaml.Node {
	if v.Kind == yaml.SequenceNode && i < len(v.Content) {
		return deref(v.Content[i])
	}
	return v
}

type pair struct {
	key     string
	keyNode *yaml.Node
	val     *yaml.Node
}

// pairs lists the entries of a mapping in order, expanding YAML merge keys
// ("<<") so that explicit keys win, and reporting duplicate and non-scalar
// keys.
func (p *parser) pairs(n *yaml.Node, field string) []pair {
	var out []pair
	index := map[string]int{}
	var merged []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.errorf(k, field, "mapping keys must be scalars, got %s", kindName(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			merged = append(merged, p.mergeSources(deref(v), field)...)
			continue
		}
		if _, dup := index[k.Value]; dup {
			p.errorf(k, joinField(field, k.Value), "duplicate key")
			continue
		}
		index[k.Value] = len(out)
		out = append(out, pair{k.Value, k, v})
	}
	for _, m := range merged {
		if _, ok := index[m.key]; !ok {
			index[m.key] = len(out)
			out = append(out, m)
		}
	}
	return out
}

func (p *parser) mergeSources(v *yaml.Node, field string) []pair {
	if !p.spend(1) {
		return nil
	}
	switch v.Kind {
	case yaml.MappingNode:
		return p.pairs(v, field)
	case yaml.SequenceNode:
		var out []pair
		for _, item := range v.Content {
			item = deref(item)
			if item.Kind != yaml.MappingNode {
				p.errorf(item, field, "merge (<<) needs mappings, got %s", kindName(item))
				continue
			}
			out = append(out, p.pairs(item, field)...)
		}
		return out
	}
	p.errorf(v, field, "merge (<<) needs a mapping, got %s", kindName(v))
	return nil
}

func joinField(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

func (p *parser) spend(n int) bool {
	p.budget -= n
	if p.budget < 0 {
		if !p.spent {
			p.spent = true
			p.errorf(nil, "", "document too large, too deeply nested or with too many aliases (limits: %d nodes, depth %d)", maxYAMLNodes, maxYAMLDepth)
		}
		return false
	}
	return true
}

// toAny converts a node to JSON-compatible values: map[string]any, []any,
// string, bool, int/int64/uint64, float64 and nil. Timestamps, binary data,
// custom tags and non-finite floats keep their text.
//
// Errors inside the value are reported under field (the top-level field), not
// a full path: building paths costs quadratic time on deep or self-referring
// documents.
func (p *parser) toAny(n *yaml.Node, field string) any {
	return p.convert(n, field, 0)
}

// maxYAMLDepth bounds nesting; no manifest comes close.
const maxYAMLDepth = 200

func (p *parser) convert(n *yaml.Node, field string, depth int) any {
	if n == nil || !p.spend(1) {
		return nil
	}
	if depth > maxYAMLDepth {
		p.budget = 0
		p.spend(1)
		return nil
	}
	n = deref(n)
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil
		}
		return p.convert(n.Content[0], field, depth+1)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			out = append(out, p.convert(c, field, depth+1))
		}
		return out
	case yaml.MappingNode:
		out := map[string]any{}
		for _, kv := range p.pairs(n, field) {
			out[kv.key] = p.convert(kv.val, field, depth+1)
		}
		return out
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil
		case "!!bool", "!!int", "!!float":
			var v any
			if err := n.Decode(&v); err != nil {
				return n.Value
			}
			if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
				return n.Value
			}
			return v
		default:
			return n.Value
		}
	}
	return nil
}

// deref follows aliases (bounded: yaml rejects alias cycles while parsing).
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == yaml.AliasNode || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// kindName names a node's type for messages: "a mapping", "a string", ...
func kindName(n *yaml.Node) string {
	n = deref(n)
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a sequence"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return "a string"
		case "!!int":
			return "an integer"
		case "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		case "!!null":
			return "null"
		case "!!timestamp":
			return "a timestamp"
		case "!!binary":
			return "binary data"
		}
		return "a scalar tagged " + n.Tag
	}
	return "an unknown node"
}

// describe is kindName plus the scalar's text, for short scalars.
func describe(n *yaml.Node) string {
	n = deref(n)
	if n != nil && n.Kind == yaml.ScalarNode && len(n.Value) <= 40 {
		return fmt.Sprintf("%s (%q)", kindName(n), n.Value)
	}
	return kindName(n)
}
