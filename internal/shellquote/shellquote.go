// Package shellquote writes words of POSIX shell command lines, for hints
// that print a command the user can run as printed.
package shellquote

import "strings"

// Word returns s as one word of a POSIX shell command line: unchanged when
// it holds only characters no shell treats specially, else in double
// quotes with \, ", $ and ` escaped. Hints enclose the commands they print
// in single quotes, hence double quotes inside them.
func Word(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-") == "" {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		if strings.ContainsRune("\\\"$`", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}
