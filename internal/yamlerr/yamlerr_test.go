package yamlerr

import (
	"errors"
	"testing"

	"github.com/skillbox-dev/skillbox/errdefs"
	"go.yaml.in/yaml/v3"
)

func TestList(t *testing.T) {
	var l List
	if l.Err() != nil {
		t.Fatal("empty list has an error")
	}
	l.File = "manifest.yaml"
	l.Add(&yaml.Node{Line: 7}, "parameters", "must be a mapping, got %s", "a sequence")
	l.Add(nil, "", "empty document")
	l.Add(&yaml.Node{Line: 2}, "name", "required")
	l.Add(&yaml.Node{Line: 2}, "name", "required") // duplicates are dropped
	var node yaml.Node
	l.Syntax(yaml.Unmarshal([]byte("a: [1\n"), &node))
	err := l.Err()
	if !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("kind: %v", err)
	}
	want := "manifest.yaml: empty document\n" +
		"manifest.yaml:1: YAML syntax error: did not find expected ',' or ']'\n" +
		"manifest.yaml:2: name: required\n" +
		"manifest.yaml:7: parameters: must be a mapping, got a sequence"
	if err.Error() != want {
		t.Errorf("got\n%s\nwant\n%s", err, want)
	}
}
