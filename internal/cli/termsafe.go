package cli

import (
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// A skill controls much of what the CLI prints: its manifest's version,
// issuer and description (inspect, list, the trust review), its stdout,
// stderr, error message and traceback (run), the output of its
// Dockerfile's RUN steps (image build), the errors the audit log
// records. A terminal acts on some characters instead of showing them:
// an escape sequence can clear the screen, move the cursor up and
// overwrite the lines a review printed, hide the text after it, set the
// window title or, on some terminals, write the clipboard; a carriage
// return rewrites its line; bidirectional overrides reorder what is
// shown. So what reaches a terminal is written with each such character
// as an escape the reader sees.
//
// safeWriter does that for everything written through it:
//   - C0 controls but tab and newline, DEL, the C1 controls (U+0080 to
//     U+009F) and the bidirectional embeddings, overrides and isolates
//     (U+202A to U+202E, U+2066 to U+2069) become \uXXXX, as JSON writes
//     them: JSON text passes through with its meaning unchanged (these
//     can only stand inside its strings);
//   - a byte that is not part of valid UTF-8 becomes \xXX.
//
// Every other character, and all of skillbox's own text, passes as it
// is. The --json envelope keeps the exact bytes (encoding/json escapes
// the C0 controls) for a script that needs them.
type safeWriter struct{ w io.Writer }

func (s safeWriter) Write(p []byte) (int, error) {
	if safeText(p) {
		return s.w.Write(p)
	}
	if _, err := s.w.Write(appendSafe(make([]byte, 0, len(p)+32), p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// safeText reports whether p holds nothing safeWriter would escape.
func safeText(p []byte) bool {
	for i := 0; i < len(p); {
		c := p[i]
		if c < utf8.RuneSelf {
			if unsafeASCII(c) {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(p[i:])
		if (r == utf8.RuneError && n == 1) || unsafeRune(r) {
			return false
		}
		i += n
	}
	return true
}

func appendSafe(dst, p []byte) []byte {
	for i := 0; i < len(p); {
		c := p[i]
		if c < utf8.RuneSelf {
			if unsafeASCII(c) {
				dst = appendU(dst, rune(c))
			} else {
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(p[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			dst = append(dst, `\x`...)
			dst = appendHex(dst, uint64(c), 2)
		case unsafeRune(r):
			dst = appendU(dst, r)
		default:
			dst = append(dst, p[i:i+n]...)
		}
		i += n
	}
	return dst
}

// inline is s, a skill's text, for a place that holds one line: a cell of
// a table (list) or a field of the trust review and inspect (version,
// issuer). Each run of white space, tabs and newlines included, becomes
// one space, so that the text cannot start a column or a line of its own
// (a fake skill listed under its description, a fake line in the review);
// for w on a terminal (a safeWriter) it is escaped as safeWriter would, so
// that a table's columns line up with what the terminal shows.
func inline(w io.Writer, s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if _, ok := w.(safeWriter); ok && !safeText([]byte(s)) {
		s = string(appendSafe(nil, []byte(s)))
	}
	return s
}

func unsafeASCII(c byte) bool { return (c < 0x20 && c != '\t' && c != '\n') || c == 0x7f }

func unsafeRune(r rune) bool {
	return (r >= 0x80 && r <= 0x9f) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
}

func appendU(dst []byte, r rune) []byte {
	return appendHex(append(dst, `\u`...), uint64(r), 4)
}

func appendHex(dst []byte, v uint64, width int) []byte {
	h := strconv.FormatUint(v, 16)
	for i := len(h); i < width; i++ {
		dst = append(dst, '0')
	}
	return append(dst, h...)
}
