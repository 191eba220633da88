package sandbox

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
)

// Config is one backend's section of the policy file (backends: NAME:
// {KEY: VALUE, ...}): its settings as written, each with its line. The
// zero value has no settings: every default. The policy file's parser
// reads only the shape (a mapping of scalars); the backend decodes and
// validates the values itself (Registration.New, usually with Decode), so
// that the parser knows no backend — as a containerd plugin declares and
// decodes its own configuration.
type Config struct {
	// Backend is the section's name (the registered backend it configures).
	Backend string
	// File and Line say where the section is, for messages ("" and 0 for a
	// Config built in code).
	File string
	Line int
	// Settings are in file order; keys are unique.
	Settings []Setting
	// CacheDir is the cache folder of the Runtime the driver is built for
	// (skillbox.WithCacheDir): a driver keeps what it caches for calls
	// (unpacked images) under it. Empty: the user's cache folder. Tools a
	// driver installs for itself (pyodide's Deno and Pyodide) stay in the
	// user's cache folder, shared.
	CacheDir string
}

// Setting is one KEY: VALUE of a backend's section.
type Setting struct {
	Key string
	// Value is the scalar as written; Kind is how YAML typed it: "int",
	// "bool", "str" or "float".
	Value, Kind string
	// Line is where the key is.
	Line int
	// Flag is the command-line argument the setting came from
	// (--backend-setting NAME.KEY=VALUE), "" for one from the file.
	Flag string
}

// ParseSetting parses a command-line setting, NAME.KEY=VALUE, for the
// backend NAME. VALUE is typed as YAML would type it in the policy file
// (an integer, true or false, a number, or else a string), so that a flag
// and a file entry with the same text mean the same.
func ParseSetting(arg string) (backend string, s Setting, err error) {
	name, value, ok := strings.Cut(arg, "=")
	backend, key, dot := strings.Cut(name, ".")
	if !ok || !dot || backend == "" || key == "" || strings.ContainsAny(key, ". ") {
		return "", Setting{}, errdefs.New(errdefs.Invalid, "--backend-setting %q: want NAME.KEY=VALUE, e.g. linux.pool_size=4", arg)
	}
	if _, err := registration(backend); err != nil {
		return "", Setting{}, errdefs.New(errdefs.Invalid, "--backend-setting %s: %v", arg, err)
	}
	return backend, Setting{Key: key, Value: value, Kind: scalarKind(value), Flag: arg}, nil
}

// scalarKind is how YAML 1.2 (core schema) types a plain scalar.
func scalarKind(v string) string {
	switch v {
	case "true", "True", "TRUE", "false", "False", "FALSE":
		return "bool"
	}
	if _, err := strconv.ParseInt(v, 0, 64); err == nil {
		return "int"
	}
	if _, err := strconv.ParseFloat(v, 64); err == nil && strings.ContainsAny(v, "0123456789") {
		return "float"
	}
	return "str"
}

// Set puts s in the section, in place of a setting with the same key (a
// flag overrides the file).
func (c *Config) Set(s Setting) {
	for i := range c.Settings {
		if c.Settings[i].Key == s.Key {
			c.Settings[i] = s
			return
		}
	}
	c.Settings = append(c.Settings, s)
}

// Configurable is implemented by a driver that has settings an operator may
// give in the policy file; `skillbox doctor` shows them.
type Configurable interface {
	// Config returns the effective settings, defaults included, keyed as in
	// the policy file, with JSON-friendly values (numbers, booleans, and
	// strings such as "30s" for durations).
	Config() map[string]any
}

// Decode calls the function of each setting's key, in file order, and
// returns every problem at once as an errdefs.Invalid error, one "policy
// FILE:LINE: backends.NAME.KEY: problem" per line (the form of the policy
// file's own errors). A key with no function is an error listing the known
// keys: a backend's settings are as strict as the rest of the file.
func (c Config) Decode(fields map[string]func(Setting) error) error {
	var errs []error
	for _, s := range c.Settings {
		f, ok := fields[s.Key]
		if !ok {
			known := make([]string, 0, len(fields))
			for k := range fields {
				known = append(known, k)
			}
			slices.Sort(known)
			what := "none: the backend has no settings"
			if len(known) > 0 {
				what = strings.Join(known, ", ")
			}
			errs = append(errs, c.settingError(s, "", "unknown setting %q (known: %s)", s.Key, what))
			continue
		}
		if err := f(s); err != nil {
			errs = append(errs, c.settingError(s, s.Key, "%v", err))
		}
	}
	return joinInvalid(errs)
}

// Errorf returns an errdefs.Invalid error about key, at its line (the
// section's when key is not set): for checks across settings.
func (c Config) Errorf(key, format string, args ...any) error {
	if s, ok := c.Lookup(key); ok {
		return c.settingError(s, key, format, args...)
	}
	return c.errorAt(c.Line, key, format, args...)
}

// settingError is an error about key at s: its flag, or its line.
func (c Config) settingError(s Setting, key, format string, args ...any) error {
	if s.Flag != "" {
		return errdefs.New(errdefs.Invalid, "--backend-setting %s: %s", s.Flag, fmt.Sprintf(format, args...))
	}
	return c.errorAt(s.Line, key, format, args...)
}

// Lookup returns the setting for key, if the section has it.
func (c Config) Lookup(key string) (Setting, bool) {
	for _, s := range c.Settings {
		if s.Key == key {
			return s, true
		}
	}
	return Setting{}, false
}

func (c Config) errorAt(line int, key, format string, args ...any) error {
	field := "backends." + c.Backend
	if key != "" {
		field += "." + key
	}
	msg := field + ": " + fmt.Sprintf(format, args...)
	switch {
	case c.File != "" && line > 0:
		msg = fmt.Sprintf("policy %s:%d: %s", c.File, line, msg)
	case c.File != "":
		msg = fmt.Sprintf("policy %s: %s", c.File, msg)
	}
	return errdefs.New(errdefs.Invalid, "%s", msg)
}

// joinInvalid is nil, the one error, or one errdefs.Invalid error whose
// message has one line per error.
func joinInvalid(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	lines := make([]string, len(errs))
	for i, e := range errs {
		lines[i] = e.Error()
	}
	return &errdefs.Error{Kind: errdefs.Invalid, Msg: strings.Join(lines, "\n"), Err: errors.Join(errs...)}
}

func (s Setting) got() string {
	if s.Kind == "str" {
		return strconv.Quote(s.Value)
	}
	return s.Value
}

// Int reads an integer in [lo, hi].
func (s Setting) Int(lo, hi int) (int, error) {
	n, err := strconv.Atoi(s.Value)
	if s.Kind != "int" || err != nil {
		return 0, fmt.Errorf("must be an integer, got %s", s.got())
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%d is out of range (%d to %d)", n, lo, hi)
	}
	return n, nil
}

// Bool reads true or false.
func (s Setting) Bool() (bool, error) {
	if s.Kind == "bool" {
		switch strings.ToLower(s.Value) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, fmt.Errorf("must be true or false, got %s", s.got())
}

// Duration reads a positive duration such as 30s or 5m.
func (s Setting) Duration() (time.Duration, error) {
	d, err := time.ParseDuration(s.Value)
	if s.Kind != "str" || err != nil || d <= 0 {
		return 0, fmt.Errorf("%s is not a positive duration such as 30s or 5m", s.got())
	}
	return d, nil
}

// OneOf reads a string that must be one of values.
func (s Setting) OneOf(values ...string) (string, error) {
	if s.Kind != "str" || !slices.Contains(values, s.Value) {
		return "", fmt.Errorf("must be one of %s, got %s", strings.Join(values, ", "), s.got())
	}
	return s.Value, nil
}
