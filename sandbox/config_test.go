package sandbox

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/skillbox-dev/skillbox/errdefs"
)

// sizedDriver is a fake backend with one setting, "size".
type sizedDriver struct {
	fakeDriver
	size int
}

func (d *sizedDriver) Config() map[string]any { return map[string]any{"size": d.size} }

func registerSized(t *testing.T, name string) {
	t.Helper()
	Register(Registration{Name: name, Strength: 1, Summary: "fake", New: func(cfg Config) (Driver, error) {
		d := &sizedDriver{fakeDriver: fakeDriver{name: name, caps: Capabilities{Available: true, Isolating: true}}, size: 1}
		err := cfg.Decode(map[string]func(Setting) error{
			"size": func(s Setting) (err error) { d.size, err = s.Int(1, 10); return err },
		})
		if err != nil {
			return nil, err
		}
		return d, nil
	}})
	t.Cleanup(func() {
		mu.Lock()
		delete(registry, name)
		delete(drivers, name)
		mu.Unlock()
	})
}

func TestConfigDecode(t *testing.T) {
	at := func(key, value, kind string) Config {
		return Config{Backend: "b", File: "p.yaml", Line: 2, Settings: []Setting{{Key: key, Value: value, Kind: kind, Line: 3}}}
	}
	var (
		n    int
		on   bool
		d    time.Duration
		mode string
	)
	fields := map[string]func(Setting) error{
		"n":    func(s Setting) (err error) { n, err = s.Int(1, 8); return err },
		"on":   func(s Setting) (err error) { on, err = s.Bool(); return err },
		"d":    func(s Setting) (err error) { d, err = s.Duration(); return err },
		"mode": func(s Setting) (err error) { mode, err = s.OneOf("a", "b"); return err },
	}
	tests := []struct {
		name string
		cfg  Config
		want string // "" for no error
	}{
		{"int", at("n", "4", "int"), ""},
		{"bool", at("on", "true", "bool"), ""},
		{"duration", at("d", "5m", "str"), ""},
		{"one of", at("mode", "b", "str"), ""},
		{"no settings", Config{Backend: "b"}, ""},
		{"unknown key", at("size", "4", "int"), `policy p.yaml:3: backends.b: unknown setting "size" (known: d, mode, n, on)`},
		{"quoted int", at("n", "4", "str"), `policy p.yaml:3: backends.b.n: must be an integer, got "4"`},
		{"int out of range", at("n", "9", "int"), `policy p.yaml:3: backends.b.n: 9 is out of range (1 to 8)`},
		{"float for int", at("n", "1.5", "float"), `backends.b.n: must be an integer, got 1.5`},
		{"string for bool", at("on", "yes", "str"), `backends.b.on: must be true or false, got "yes"`},
		{"bad duration", at("d", "5", "int"), `backends.b.d: 5 is not a positive duration`},
		{"negative duration", at("d", "-1s", "str"), `is not a positive duration`},
		{"not one of", at("mode", "c", "str"), `backends.b.mode: must be one of a, b, got "c"`},
		{"no file", Config{Backend: "b", Settings: []Setting{{Key: "x", Value: "1", Kind: "int"}}}, `backends.b: unknown setting "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Decode(fields)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				return
			}
			if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Decode: %v; want invalid containing %q", err, tt.want)
			}
		})
	}
	all := Config{Backend: "b", Settings: []Setting{
		{Key: "n", Value: "4", Kind: "int"}, {Key: "on", Value: "true", Kind: "bool"},
		{Key: "d", Value: "5m", Kind: "str"}, {Key: "mode", Value: "b", Kind: "str"},
	}}
	if err := all.Decode(fields); err != nil || n != 4 || !on || d != 5*time.Minute || mode != "b" {
		t.Errorf("decoded n=%d on=%v d=%v mode=%q, %v", n, on, d, mode, err)
	}
}

// Every bad setting is reported at once, one line each.
func TestConfigDecodeAllErrors(t *testing.T) {
	cfg := Config{Backend: "b", File: "p.yaml", Settings: []Setting{
		{Key: "a", Value: "x", Kind: "str", Line: 4},
		{Key: "b", Value: "y", Kind: "str", Line: 5},
	}}
	err := cfg.Decode(nil)
	want := "policy p.yaml:4: backends.b: unknown setting \"a\" (known: none: the backend has no settings)\n" +
		"policy p.yaml:5: backends.b: unknown setting \"b\" (known: none: the backend has no settings)"
	if err == nil || err.Error() != want || !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("err = %v\nwant %s", err, want)
	}
}

// A backend's section reaches its own New; the driver built with it is
// the one Lookup and Choose return, while the shared default is unchanged.
func TestNewBackendsConfiguresDriver(t *testing.T) {
	registerSized(t, "sized")
	b, err := NewBackends(map[string]Config{"sized": {File: "p.yaml", Line: 2, Settings: []Setting{{Key: "size", Value: "7", Kind: "int", Line: 3}}}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := b.Lookup("sized")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"size": 7}, d.(Configurable).Config()); diff != "" {
		t.Errorf("configured driver (-want +got):\n%s", diff)
	}
	if c, err := b.Choose(context.Background(), Auto, false); err != nil || c != d {
		t.Errorf("auto chose %v, %v; want the configured driver", c, err)
	}
	shared, err := Lookup("sized")
	if err != nil {
		t.Fatal(err)
	}
	if got := shared.(Configurable).Config()["size"]; got != 1 {
		t.Errorf("shared driver size = %v, want the default 1", got)
	}
	var none *Backends
	if d, err := none.Lookup("sized"); err != nil || d != shared {
		t.Errorf("nil Backends: %v, %v; want the shared driver", d, err)
	}
}

func TestNewBackendsErrors(t *testing.T) {
	registerSized(t, "sized")
	_, err := NewBackends(map[string]Config{
		"sized": {File: "p.yaml", Line: 2, Settings: []Setting{{Key: "size", Value: "70", Kind: "int", Line: 3}}},
		"sizd":  {File: "p.yaml", Line: 5},
	})
	for _, want := range []string{
		"policy p.yaml:3: backends.sized.size: 70 is out of range (1 to 10)",
		`policy p.yaml:5: backends.sizd: unknown backend "sizd" (known: `,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("kind %v, want invalid", errdefs.KindOf(err))
	}
}

// Decoding any value never panics, and a refusal is always invalid.
func FuzzSettingDecode(f *testing.F) {
	f.Add("4", "int")
	f.Add("5m", "str")
	f.Add("true", "bool")
	f.Add("-9223372036854775809", "int")
	f.Fuzz(func(t *testing.T, value, kind string) {
		cfg := Config{Backend: "b", File: "f.yaml", Settings: []Setting{
			{Key: "n", Value: value, Kind: kind, Line: 1}, {Key: "on", Value: value, Kind: kind, Line: 2},
			{Key: "d", Value: value, Kind: kind, Line: 3}, {Key: "mode", Value: value, Kind: kind, Line: 4},
		}}
		err := cfg.Decode(map[string]func(Setting) error{
			"n":    func(s Setting) error { _, err := s.Int(1, 8); return err },
			"on":   func(s Setting) error { _, err := s.Bool(); return err },
			"d":    func(s Setting) error { _, err := s.Duration(); return err },
			"mode": func(s Setting) error { _, err := s.OneOf("a", "b"); return err },
		})
		if err != nil && errdefs.KindOf(err) != errdefs.Invalid {
			t.Fatalf("error of kind %s: %v", errdefs.KindOf(err), err)
		}
	})
}

// A flag's value is typed as the policy file's YAML would type it, and a
// flag's setting replaces the file's for the same key.
func TestParseSetting(t *testing.T) {
	registerSized(t, "flagged")
	for _, tt := range []struct{ arg, key, value, kind string }{
		{"flagged.n=4", "n", "4", "int"},
		{"flagged.on=true", "on", "true", "bool"},
		{"flagged.on=False", "on", "False", "bool"},
		{"flagged.f=1.5", "f", "1.5", "float"},
		{"flagged.d=30s", "d", "30s", "str"},
		{"flagged.s=", "s", "", "str"},
		{"flagged.s=a=b", "s", "a=b", "str"},
	} {
		name, s, err := ParseSetting(tt.arg)
		if err != nil || name != "flagged" || s.Key != tt.key || s.Value != tt.value || s.Kind != tt.kind || s.Flag != tt.arg {
			t.Errorf("ParseSetting(%q) = %q %+v %v", tt.arg, name, s, err)
		}
	}
	for _, arg := range []string{"flagged", "flagged.n", ".n=1", "flagged.=1", "flagged.a.b=1", "nosuch.n=1"} {
		if _, _, err := ParseSetting(arg); errdefs.KindOf(err) != errdefs.Invalid || !strings.Contains(err.Error(), "--backend-setting") {
			t.Errorf("ParseSetting(%q) = %v, want invalid naming the flag", arg, err)
		}
	}
	c := Config{Backend: "flagged", File: "p.yaml", Settings: []Setting{{Key: "n", Value: "1", Kind: "int", Line: 3}}}
	_, s, _ := ParseSetting("flagged.n=lots")
	c.Set(s)
	if len(c.Settings) != 1 || c.Settings[0].Value != "lots" {
		t.Fatalf("Set did not replace: %+v", c.Settings)
	}
	err := c.Decode(map[string]func(Setting) error{"n": func(s Setting) error { _, err := s.Int(0, 9); return err }})
	if err == nil || err.Error() != `--backend-setting flagged.n=lots: must be an integer, got "lots"` {
		t.Errorf("Decode = %v", err)
	}
}
