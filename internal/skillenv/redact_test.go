package skillenv

import "testing"

func TestRedactURLs(t *testing.T) {
	for in, want := range map[string]string{
		"PIP_INDEX_URL=https://user:tok@idx.example/simple":                  "PIP_INDEX_URL=https://***@idx.example/simple",
		"PIP_INDEX_URL=https://tok@idx.example":                              "PIP_INDEX_URL=https://***@idx.example",
		"PIP_EXTRA_INDEX_URL=https://a:b@x.example/s http://c@y.example:8/s": "PIP_EXTRA_INDEX_URL=https://***@x.example/s http://***@y.example:8/s",
		"PIP_INDEX_URL=https://idx.example/simple?x=a@b":                     "PIP_INDEX_URL=https://idx.example/simple?x=a@b",
		":env:.index-url='https://u:p@h.example/simple'":                     ":env:.index-url='https://***@h.example/simple'",
		"PIP_NO_INDEX=1": "PIP_NO_INDEX=1",
	} {
		if got := RedactURLs(in); got != want {
			t.Errorf("RedactURLs(%q) = %q, want %q", in, got, want)
		}
	}
	idx := Index{Vars: []string{"PIP_INDEX_URL=https://user:tok@idx.example/simple"}}
	if s := idx.String(); s != "PIP_INDEX_URL=https://***@idx.example/simple" {
		t.Errorf("String() = %q", s)
	}
	if idx.Vars[0] != "PIP_INDEX_URL=https://user:tok@idx.example/simple" {
		t.Errorf("Redacted changed the Index it was called on: %q", idx.Vars[0])
	}
}
