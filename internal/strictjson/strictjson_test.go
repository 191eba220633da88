package strictjson

import (
	"testing"
	"time"
)

type entry struct {
	ID     string    `json:"id"`
	Memory int64     `json:"memory"`
	Env    []string  `json:"env"`
	At     time.Time `json:"at"`
}

type doc struct {
	Version int              `json:"version"`
	Skills  map[string]entry `json:"skills"`
	List    []entry          `json:"list"`
}

// TestDecodeErrors: each refusal names its line and place; a name in
// another case or given twice is refused like an unknown one.
func TestDecodeErrors(t *testing.T) {
	tests := []struct{ name, data, want string }{
		{"empty", " \n", "empty file"},
		{"truncated", `{"version": 1`, "the file ends too early (truncated?)"},
		{"syntax", "{\n\"version\": 1,,}", "line 2: invalid character ',' at start of value"},
		{"trailing", `{"version": 1} {}`, "trailing data after the JSON object"},
		{"unknown", "{\"version\": 1,\n\"trust_all\": true}", `line 2: unknown field "trust_all"`},
		{"other case", "{\"version\": 1,\n\"skills\": {\"a/b\": {\n\"ID\": \"x\"}}}", `line 3: skills["a/b"]: unknown field "ID" (names are matched exactly, case included)`},
		{"field twice", "{\"version\": 1,\n\"list\": [{\"id\": \"x\",\n\"id\": \"y\"}]}", `line 3: list[0]: duplicate key "id"`},
		{"key twice", "{\"skills\": {\"a/b\": {},\n\"a/b\": {}}}", `line 2: skills: duplicate key "a/b"`},
		{"top-level twice", "{\"version\": 1,\n\"version\": 2}", `line 2: duplicate key "version"`},
		{"wrong type", "{\"skills\": {\"a/b\": {\n\"memory\": \"1\"}}}", `line 2: skills["a/b"].memory must be int64, not string`},
		{"wrong element", "{\"list\": [{}, {\"env\": [\n1]}]}", `line 2: list[1].env[0] must be string, not number`},
		{"bad time", "{\"list\": [{\n\"at\": \"soon\"}]}", `line 2: list[0].at: parsing time "soon" as "2006-01-02T15:04:05Z07:00": cannot parse "soon" as "2006"`},
		{"invalid UTF-8", "{\"skills\": {\n\"a\xff\": {}}}", "line 2: skills: invalid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d doc
			err := Decode([]byte(tt.data), &d)
			if err == nil || err.Error() != tt.want {
				t.Errorf("err = %v\nwant %s", err, tt.want)
			}
		})
	}
	var d doc
	if err := Decode([]byte(`{"version": 1, "skills": {"a/b": {"id": "x", "memory": 2}}, "list": []}`), &d); err != nil || d.Skills["a/b"].Memory != 2 {
		t.Errorf("a good document: %v %+v", err, d)
	}
}
