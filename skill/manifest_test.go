package skill

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/skillbox-dev/skillbox/errdefs"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// golden is what a testdata/manifests/*.golden.json file holds.
type golden struct {
	JSON     json.RawMessage `json:"json"`
	Manifest *Manifest       `json:"manifest"`
}

func TestManifestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/manifests/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			m, err := ParseManifest(data)
			if err != nil {
				t.Fatalf("ParseManifest: %v", err)
			}
			var js bytes.Buffer
			if err := json.Indent(&js, m.JSON(), "", "  "); err != nil {
				t.Fatalf("JSON() is not valid JSON: %v", err)
			}
			got, err := json.MarshalIndent(golden{JSON: js.Bytes(), Manifest: m}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			goldenFile := strings.TrimSuffix(file, ".yaml") + ".golden.json"
			if *update {
				if err := os.WriteFile(goldenFile, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(goldenFile)
			if err != nil {
				t.Fatalf("%v (run go test ./skill -run TestManifestGolden -update)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s mismatch (-want +got; refresh with -update):\n%s", goldenFile, diff)
			}
		})
	}
}

func mustParse(t *testing.T, src string) *Manifest {
	t.Helper()
	m, err := ParseManifest([]byte(src))
	if err != nil {
		t.Fatalf("ParseManifest:\n%s\nerror: %v", src, err)
	}
	return m
}

const head = "name: demo\nversion: 1.0.0\ndescription: A demo.\n"

func TestManifestFields(t *testing.T) {
	m := mustParse(t, mustRead(t, "testdata/manifests/wallet_screening.yaml"))
	want := &Manifest{
		Name:             "wallet_screening",
		Version:          "0.1.0",
		Description:      "Screens an Ethereum wallet for risk signals using Etherscan and CoinGecko.",
		ShortDescription: "Wallet risk screening",
		Category:         "finance",
		Issuer:           map[string]any{"name": "ARPA Hellenic Logical Systems", "url": "https://arpacorp.net"},
		Parameters: map[string]any{
			"type": "object",
			"properties": map[string]any{
				"address": map[string]any{"type": "string", "description": "The wallet address (0x...)."},
				"chain":   map[string]any{"type": "string", "enum": []any{"ethereum", "polygon"}, "default": "ethereum"},
			},
			"required": []any{"address"},
		},
		Outputs: map[string]any{
			"risk_score": map[string]any{"type": "number"},
			"flags":      map[string]any{"type": "array"},
		},
		Constitution: "Never present a risk score as legal advice.\nAlways cite the data source.\n",
		EnvVars: []EnvVar{
			{Name: "ETHERSCAN_API_KEY", Description: "Etherscan API key", Required: true},
			{Name: "COINGECKO_API_KEY", Description: "Optional CoinGecko key"},
		},
		Requirements: []string{"requests", "pyyaml>=6.0", "numpy>=1.20,<2"},
		Presentation: map[string]any{"icon": "shield", "color": "#004488"},
		Permissions:  Permissions{Env: []string{"ETHERSCAN_API_KEY", "COINGECKO_API_KEY"}},
	}
	if diff := cmp.Diff(want, m, cmpopts.IgnoreUnexported(Manifest{})); diff != "" {
		t.Errorf("manifest (-want +got):\n%s", diff)
	}
	var params map[string]any
	if err := json.Unmarshal(m.ParametersJSON(), &params); err != nil {
		t.Fatalf("ParametersJSON: %v", err)
	}
	if diff := cmp.Diff(want.Parameters, params); diff != "" {
		t.Errorf("ParametersJSON (-want +got):\n%s", diff)
	}
}

func mustRead(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParametersJSONAbsent(t *testing.T) {
	m := mustParse(t, head)
	if got, want := string(m.ParametersJSON()), `{"type":"object","properties":{}}`; got != want {
		t.Errorf("ParametersJSON() = %s, want %s", got, want)
	}
}

func TestUnknownFieldsKept(t *testing.T) {
	m := mustParse(t, head+"future_field: {a: 1}\nx-vendor: [1, two]\nwhen: 2024-05-01\n")
	want := map[string]any{
		"future_field": map[string]any{"a": 1},
		"x-vendor":     []any{1, "two"},
		"when":         "2024-05-01",
	}
	if diff := cmp.Diff(want, m.Extra); diff != "" {
		t.Errorf("Extra (-want +got):\n%s", diff)
	}
	var doc map[string]any
	if err := json.Unmarshal(m.JSON(), &doc); err != nil {
		t.Fatalf("JSON(): %v", err)
	}
	for _, k := range []string{"name", "version", "description", "future_field", "x-vendor", "when"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("JSON() lacks %q: %s", k, m.JSON())
		}
	}
}

// An unknown field that looks like a known one misspelled is still kept,
// and warned of; other unknown fields are not. Every known field is read,
// not kept as unknown.
func TestMisspelledFieldsWarned(t *testing.T) {
	m := mustParse(t, head+"paramters: {type: object}\nPermissions: {}\nenv_var: [A]\nauthor: me\ntags: [a]\nfuture_field: 1\n")
	want := []string{
		`manifest.yaml: unknown field "Permissions" is ignored; did you mean "permissions"?`,
		`manifest.yaml: unknown field "env_var" is ignored; did you mean "env_vars"?`,
		`manifest.yaml: unknown field "paramters" is ignored; did you mean "parameters"?`,
	}
	if diff := cmp.Diff(want, m.misspelledFields()); diff != "" {
		t.Errorf("misspelledFields (-want +got):\n%s", diff)
	}
	if _, ok := m.Extra["paramters"]; !ok || m.Parameters != nil {
		t.Errorf("a misspelled field was read as the known one: %v", m.Extra)
	}
	for _, f := range knownFields {
		if strings.Contains(head, "\n"+f+":") || strings.HasPrefix(head, f+":") {
			continue // head has it
		}
		m := mustParse(t, head+f+": null\n")
		if _, ok := m.Extra[f]; ok {
			t.Errorf("known field %q kept as unknown", f)
		}
	}
}

func TestJSONBuiltInCode(t *testing.T) {
	m := &Manifest{Name: "n", Version: "1", Description: "d", EnvVars: []EnvVar{{Name: "K", Required: true}}, Extra: map[string]any{"x": 1}}
	var got map[string]any
	if err := json.Unmarshal(m.JSON(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"name": "n", "version": "1", "description": "d", "x": 1.0,
		"env_vars": map[string]any{"K": map[string]any{"description": "", "required": true}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("JSON() (-want +got):\n%s", diff)
	}
}

func TestEnvVarShapes(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		want    []EnvVar
		wantEnv []string
	}{
		{
			name: "mapping",
			src:  "env_vars:\n  A_KEY:\n    description: a\n    required: true\n  B_KEY:\n    description: b\n  C_KEY:\n  D_KEY: just a description\n",
			want: []EnvVar{{"A_KEY", "a", true}, {"B_KEY", "b", false}, {"C_KEY", "", false}, {"D_KEY", "just a description", false}},
		},
		{
			name: "list of names",
			src:  "env_vars: [Z_KEY, A_KEY]\n",
			want: []EnvVar{{Name: "Z_KEY"}, {Name: "A_KEY"}},
		},
		{
			name: "list of mappings",
			src:  "env_vars:\n  - name: A_KEY\n    description: a\n    required: true\n  - {name: B_KEY}\n",
			want: []EnvVar{{"A_KEY", "a", true}, {Name: "B_KEY"}},
		},
		{
			name: "mixed list",
			src:  "env_vars:\n  - A_KEY\n  - {name: B_KEY, required: false}\n",
			want: []EnvVar{{Name: "A_KEY"}, {Name: "B_KEY"}},
		},
		{
			name: "explicit env narrows the default",
			src:  "env_vars: [A_KEY, B_KEY]\npermissions: {env: [B_KEY]}\n",
			want: []EnvVar{{Name: "A_KEY"}, {Name: "B_KEY"}}, wantEnv: []string{"B_KEY"},
		},
		{
			name: "null env_vars",
			src:  "env_vars:\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustParse(t, head+tt.src)
			if diff := cmp.Diff(tt.want, m.EnvVars); diff != "" {
				t.Errorf("EnvVars (-want +got):\n%s", diff)
			}
			wantEnv := tt.wantEnv
			if wantEnv == nil {
				for _, e := range tt.want {
					wantEnv = append(wantEnv, e.Name)
				}
			}
			if diff := cmp.Diff(wantEnv, m.Permissions.Env, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Permissions.Env (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPermissions(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want Permissions
	}{
		{name: "absent", src: "", want: Permissions{}},
		{name: "empty block", src: "permissions: {}\n", want: Permissions{Block: true}},
		{name: "null block", src: "permissions:\n", want: Permissions{Block: true}},
		{
			name: "full",
			src: "permissions:\n  network: [api.etherscan.io, \"api.coingecko.com:443\", \"*.example.org\", \"[::1]:8080\"]\n" +
				"  env: [K]\n  filesystem: {read: [data/, ./a/../b, .]}\n  limits: {timeout: 30s, memory: 256MiB, pids: 64, output: 1MiB}\n",
			want: Permissions{
				Block:          true,
				Network:        []string{"api.etherscan.io", "api.coingecko.com:443", "*.example.org", "[::1]:8080"},
				Env:            []string{"K"},
				EnvSet:         true,
				FilesystemRead: []string{"data", "b", "."},
				Limits:         Limits{Timeout: 30 * time.Second, Memory: 256 << 20, Pids: 64, Output: 1 << 20},
			},
		},
		{
			name: "explicit empty env",
			src:  "env_vars: [K]\npermissions: {env: []}\n",
			want: Permissions{Block: true, Env: []string{}, EnvSet: true},
		},
		{
			name: "integer limits",
			src:  "permissions: {limits: {timeout: 5, memory: 1048576, output: 64k}}\n",
			want: Permissions{Block: true, Limits: Limits{Timeout: 5 * time.Second, Memory: 1 << 20, Output: 64 << 10}},
		},
		{
			name: "network as operators write it",
			src:  "permissions: {network: [\"Example.COM.\", \"bücher.example:443\", \"::1\", \"[::1]\"]}\n",
			want: Permissions{Block: true, Network: []string{"Example.COM.", "bücher.example:443", "::1", "[::1]"}},
		},
		{
			name: "single network string",
			src:  "permissions: {network: example.com}\n",
			want: Permissions{Block: true, Network: []string{"example.com"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustParse(t, head+tt.src)
			if diff := cmp.Diff(tt.want, m.Permissions); diff != "" {
				t.Errorf("Permissions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestManifestErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // substrings, all required
	}{
		{"empty file", "", []string{"manifest.yaml: empty file"}},
		{"only whitespace", "  \n\n", []string{"manifest.yaml: empty file"}},
		{"only a comment", "# nothing\n", []string{"manifest.yaml: empty document"}},
		{"syntax error", "name: a\nversion: [1\ndescription: x\n", []string{"manifest.yaml:", "YAML syntax error"}},
		{"bad indentation", "name: a\n  version: 1\n", []string{"manifest.yaml:2: YAML syntax error"}},
		{"tab indentation", "name: a\n\tversion: 1\n", []string{"manifest.yaml:2: YAML syntax error"}},
		{"two documents", head + "---\nname: b\n", []string{"manifest.yaml:4: more than one YAML document"}},
		{"top-level sequence", "- a\n- b\n", []string{"manifest.yaml:1: top level must be a mapping of fields, got a sequence"}},
		{"top-level scalar", "hello\n", []string{"manifest.yaml:1: top level must be a mapping of fields, got a string"}},
		{"missing name", "version: 1\ndescription: d\n", []string{"manifest.yaml:1: name: required field is missing"}},
		{"missing all", "category: x\n", []string{
			"manifest.yaml:1: description: required field is missing",
			"manifest.yaml:1: name: required field is missing",
			"manifest.yaml:1: version: required field is missing"}},
		{"null name", "name:\nversion: 1\ndescription: d\n", []string{"manifest.yaml:1: name: required field is missing"}},
		{"empty name", "name: ''\nversion: 1\ndescription: d\n", []string{"manifest.yaml:1: name: must not be empty"}},
		{"blank description", "name: a\nversion: 1\ndescription: '  '\n", []string{"manifest.yaml:3: description: must not be empty"}},
		{"name not a string", "name: [a]\nversion: 1\ndescription: d\n", []string{"manifest.yaml:1: name: must be a string, got a sequence"}},
		{"name a number", "name: 12\nversion: 1\ndescription: d\n", []string{"manifest.yaml:1: name: must be a string, got an integer"}},
		{"version a mapping", "name: a\nversion: {major: 1}\ndescription: d\n", []string{"manifest.yaml:2: version: must be a string"}},
		{"version a boolean", "name: a\nversion: true\ndescription: d\n", []string{"manifest.yaml:2: version: must be a string", "a boolean"}},
		{"short_description", head + "short_description: 3\n", []string{"manifest.yaml:4: short_description: must be a string, got an integer"}},
		{"category", head + "category: [a]\n", []string{"manifest.yaml:4: category: must be a string, got a sequence"}},
		{"constitution", head + "constitution: {a: 1}\n", []string{"manifest.yaml:4: constitution: must be a string, got a mapping"}},
		{"issuer", head + "issuer: [a]\n", []string{"manifest.yaml:4: issuer: must be a string or a mapping, got a sequence"}},
		{"parameters sequence", head + "\n\n\nparameters:\n  - a\n", []string{"manifest.yaml:8: parameters: must be a mapping (JSON Schema object), got a sequence"}},
		{"parameters string", head + "parameters: foo\n", []string{"manifest.yaml:4: parameters: must be a mapping (JSON Schema object), got a string"}},
		{"parameters type", head + "parameters:\n  type: array\n", []string{"manifest.yaml:5: parameters.type: must be \"object\""}},
		{"env_vars scalar", head + "env_vars: 3\n", []string{"manifest.yaml:4: env_vars: must be a mapping of NAME: {description, required} or a list, got an integer"}},
		{"env_vars bad name", head + "env_vars: [\"bad-name\"]\n", []string{"manifest.yaml:4: env_vars[0]: \"bad-name\" is not a valid environment variable name"}},
		{"env_vars duplicate", head + "env_vars: [A, A]\n", []string{"manifest.yaml:4: env_vars[1]: A is declared twice"}},
		{"env_vars item type", head + "env_vars:\n  - [A]\n", []string{"manifest.yaml:5: env_vars[0]: must be a name or a mapping"}},
		{"env_vars missing name", head + "env_vars:\n  - description: x\n", []string{"manifest.yaml:5: env_vars[0]: missing name"}},
		{"env_vars required type", head + "env_vars:\n  A:\n    required: yes please\n", []string{"manifest.yaml:6: env_vars.A.required: must be true or false"}},
		{"env_vars entry type", head + "env_vars:\n  A: [1]\n", []string{"manifest.yaml:5: env_vars.A: must be a mapping {description, required}, got a sequence"}},
		{"requirements mapping", head + "requirements: {a: 1}\n", []string{"manifest.yaml:4: requirements: must be a list of strings, got a mapping"}},
		{"requirements item", head + "requirements:\n  - requests\n  - {a: 1}\n", []string{"manifest.yaml:6: requirements[1]: must be a string, got a mapping"}},
		{"requirements empty item", head + "requirements: ['']\n", []string{"manifest.yaml:4: requirements[0]: must not be empty"}},
		{"presentation", head + "presentation: [a]\n", []string{"manifest.yaml:4: presentation: must be a mapping, got a sequence"}},
		{"permissions scalar", head + "permissions: all\n", []string{"manifest.yaml:4: permissions: must be a mapping (network, env, filesystem, limits), got a string"}},
		{"permissions unknown", head + "permissions:\n  netwrk: [a]\n", []string{"manifest.yaml:5: permissions: unknown field \"netwrk\""}},
		{"network url", head + "permissions: {network: [\"https://x.org\"]}\n", []string{"manifest.yaml:4: permissions.network[0]: \"https://x.org\": give host or host:port, not a URL"}},
		{"network port", head + "permissions:\n  network:\n    - a.org:99999\n", []string{"manifest.yaml:6: permissions.network[0]: \"a.org:99999\": port must be a number from 1 to 65535"}},
		{"network wildcard", head + "permissions: {network: [\"a.*.org\"]}\n", []string{"permissions.network[0]", "wildcard"}},
		{"network type", head + "permissions: {network: {a: 1}}\n", []string{"manifest.yaml:4: permissions.network: must be a list of strings, got a mapping"}},
		{"network underscore", head + "permissions: {network: [\"a_b.org\"]}\n", []string{"manifest.yaml:4: permissions.network[0]: \"a_b.org\": bad host name"}},
		{"network numeric top label", head + "permissions: {network: [\"127.1\"]}\n", []string{"permissions.network[0]", "numeric top-level label"}},
		{"network bracketed IPv4", head + "permissions: {network: [\"[10.0.0.1]:80\"]}\n", []string{"permissions.network[0]", "not an IPv6 address"}},
		{"network zone", head + "permissions: {network: [\"[fe80::1%25eth0]:80\"]}\n", []string{"permissions.network[0]", "zones"}},
		{"network empty port", head + "permissions: {network: [\"[::1]:\"]}\n", []string{"permissions.network[0]", "port must be a number"}},
		{"env bad name", head + "permissions: {env: [\"1X\"]}\n", []string{"manifest.yaml:4: permissions.env[0]: \"1X\" is not a valid environment variable name"}},
		{"filesystem absolute", head + "permissions:\n  filesystem:\n    read: [/etc]\n", []string{"manifest.yaml:6: permissions.filesystem.read[0]: \"/etc\": must be relative to the bundle"}},
		{"filesystem escape", head + "permissions: {filesystem: {read: [\"data/../../x\"]}}\n", []string{"permissions.filesystem.read[0]: \"data/../../x\": escapes the bundle"}},
		{"filesystem newline", head + "permissions: {filesystem: {read: [\"data/x\\n  nothing\"]}}\n", []string{"permissions.filesystem.read[0]: \"data/x\\n  nothing\": must not hold control characters"}},
		{"requirements too many", head + "requirements: [" + strings.Repeat("a, ", 256) + "b]\n", []string{"manifest.yaml:4: requirements: 257 requirements, more than 256"}},
		{"requirements too long", head + "requirements:\n" + strings.Repeat("  - alpha; platform_release == '"+strings.Repeat("x", 800)+"'\n", 200), []string{
			"manifest.yaml:5: requirements: 165800 bytes in all, more than 64KiB"}},
		{"requirement newline", head + "requirements: [\"requests\\n\\nInterpreter:\"]\n", []string{"manifest.yaml:4: requirements[0]: \"requests\\n\\nInterpreter:\": must not hold control characters"}},
		{"filesystem write", head + "permissions: {filesystem: {write: [x]}}\n", []string{"permissions.filesystem: unknown field \"write\""}},
		{"filesystem type", head + "permissions: {filesystem: [x]}\n", []string{"permissions.filesystem: must be a mapping"}},
		{"limits unknown", head + "permissions: {limits: {cpu: 2}}\n", []string{"permissions.limits: unknown field \"cpu\""}},
		{"limits timeout junk", head + "permissions: {limits: {timeout: soon}}\n", []string{"manifest.yaml:4: permissions.limits.timeout: \"soon\" is not a duration"}},
		{"limits timeout negative", head + "permissions: {limits: {timeout: -5s}}\n", []string{"permissions.limits.timeout: must be positive"}},
		{"limits memory junk", head + "permissions: {limits: {memory: lots}}\n", []string{"permissions.limits.memory: size \"lots\" must start with a whole number"}},
		{"limits memory zero", head + "permissions: {limits: {memory: 0}}\n", []string{"permissions.limits.memory: must be positive"}},
		{"limits output unit", head + "permissions: {limits: {output: 1XB}}\n", []string{"permissions.limits.output: size \"1XB\" has an unknown unit \"XB\""}},
		{"limits pids", head + "permissions: {limits: {pids: many}}\n", []string{"permissions.limits.pids: must be a positive integer"}},
		{"limits pids zero", head + "permissions: {limits: {pids: 0}}\n", []string{"permissions.limits.pids: must be between 1 and"}},
		{"duplicate key", head + "name: again\n", []string{"manifest.yaml:4: name: duplicate key"}},
		{"complex key", head + "? [a]\n: b\n", []string{"manifest.yaml:4: mapping keys must be scalars"}},
		{"several errors in line order", "name: [x]\nversion: 1\ndescription: d\nparameters: 3\n", []string{
			"manifest.yaml:1: name: must be a string, got a sequence\nmanifest.yaml:4: parameters: must be a mapping"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseManifest([]byte(tt.src))
			if err == nil {
				t.Fatalf("ParseManifest succeeded (%+v), want error containing %q", m, tt.want)
			}
			if m != nil {
				t.Errorf("ParseManifest returned a manifest with its error")
			}
			if k := errdefs.KindOf(err); k != errdefs.Invalid {
				t.Errorf("kind = %q, want invalid", k)
			}
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Errorf("errors.Is(err, ErrInvalid) = false")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%s\nwant it to contain:\n%s", err, w)
				}
			}
		})
	}
}

func TestManifestErrorsDeterministic(t *testing.T) {
	src := "name: [x]\nversion: {}\ndescription: []\nparameters: 3\nenv_vars: 4\npermissions: {limits: {cpu: 1, pids: x}}\n"
	_, first := ParseManifest([]byte(src))
	for range 20 {
		_, err := ParseManifest([]byte(src))
		if err.Error() != first.Error() {
			t.Fatalf("error text varies:\n%s\nvs\n%s", first, err)
		}
	}
	if n := strings.Count(first.Error(), "\n") + 1; n < 6 {
		t.Errorf("want every problem reported, got %d lines:\n%s", n, first)
	}
}

func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString(head + "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 10; i++ {
		b.WriteString("a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [")
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	_, err := ParseManifest([]byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "too many aliases") {
		t.Fatalf("want alias-bomb refusal, got %v", err)
	}
}

func TestManifestTooLarge(t *testing.T) {
	src := head + "x: \"" + strings.Repeat("a", maxManifestSize) + "\"\n"
	_, err := ParseManifest([]byte(src))
	if err == nil || !strings.Contains(err.Error(), "too large") || errdefs.KindOf(err) != errdefs.Invalid {
		t.Fatalf("want too-large Invalid error, got %v", err)
	}
}

func FuzzParseManifest(f *testing.F) {
	files, _ := filepath.Glob("testdata/manifests/*.yaml")
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{"", head, "- a", "a: &x [*x]", head + "permissions: {limits: {memory: 9999999999999999999G}}",
		head + "<<: {env_vars: [A]}", "{", head + "env_vars: {A: {required: true}}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			if k := errdefs.KindOf(err); k != errdefs.Invalid {
				t.Fatalf("error kind %q, want invalid: %v", k, err)
			}
			if m != nil {
				t.Fatal("manifest returned with an error")
			}
			return
		}
		if m.Name == "" || m.Version == "" || m.Description == "" {
			t.Fatalf("accepted manifest lacks a required field: %+v", m)
		}
		if !json.Valid(m.JSON()) {
			t.Fatalf("JSON() invalid: %q", m.JSON())
		}
		if !json.Valid(m.ParametersJSON()) {
			t.Fatalf("ParametersJSON() invalid: %q", m.ParametersJSON())
		}
	})
}

func TestSelfReferringAliases(t *testing.T) {
	for name, src := range map[string]string{
		"alias inside its anchor": head + "defaults: &d\n  x: *d\n",
		"self merge":              head + "defaults: &d\n  <<: *d\n  a: 1\n",
		"deep nesting":            head + "x: " + strings.Repeat("[", 500) + strings.Repeat("]", 500) + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			// A guard against a parser that never returns, not a speed
			// test: generous, and within the run's own -timeout.
			guard := time.Minute
			if dl, ok := t.Deadline(); ok {
				guard = min(guard, time.Until(dl)/2)
			}
			done := make(chan error, 1)
			go func() {
				_, err := ParseManifest([]byte(src))
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || errdefs.KindOf(err) != errdefs.Invalid {
					t.Fatalf("want Invalid error, got %v", err)
				}
			case <-time.After(guard):
				t.Fatalf("ParseManifest did not return within %v", guard)
			}
		})
	}
}

// A manifest of thousands of fields that look like known ones misspelled
// (2047 case variants of "description") gets a few warnings, not one per
// field: every call carries its skill's warnings, in its answer and its
// audit record, which such a manifest of 200 KB made 1.2 MB long.
func TestMisspelledFieldsWarningsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString(head)
	w := "description"
	for bits := 1; bits < 1<<len(w); bits++ {
		for i, c := range w {
			if bits>>i&1 == 1 {
				c -= 'a' - 'A'
			}
			b.WriteRune(c)
		}
		b.WriteString(": 1\n")
	}
	m := mustParse(t, b.String())
	got := m.misspelledFields()
	if len(got) > maxMisspelledWarnings+1 {
		t.Fatalf("%d warnings, want at most %d", len(got), maxMisspelledWarnings+1)
	}
	if last := got[len(got)-1]; !strings.Contains(last, fmt.Sprintf("%d more unknown fields", 2047-maxMisspelledWarnings)) {
		t.Errorf("last warning %q does not count the fields left unnamed", last)
	}
}
