package shellquote

import "testing"

func TestWord(t *testing.T) {
	for in, want := range map[string]string{
		"demo/hello":       "demo/hello",
		"./a-b_c.d/x@1:2":  "./a-b_c.d/x@1:2",
		"/tmp/my skills/x": `"/tmp/my skills/x"`,
		`a"b$c` + "`d\\e":  `"a\"b\$c\` + "`d\\\\e" + `"`,
		"it's":             `"it's"`,
		"":                 `""`,
	} {
		if got := Word(in); got != want {
			t.Errorf("Word(%q) = %s, want %s", in, got, want)
		}
	}
}
