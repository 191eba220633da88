// Package secrets supplies the values of the environment variables granted
// to a skill. Policy decides which names a skill gets; a Provider only says
// what a granted name's value is. Values never appear in audit records,
// messages or errors.
//
// Providers: Env (the host environment), EnvFile (a dotenv file, parsed
// strictly), Dir (a folder with one file per variable, as Docker and
// Kubernetes mount secrets) and Chain (the first provider that has a value).
package secrets

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/skillbox-dev/skillbox/errdefs"
)

// Provider looks up secret values by variable name.
type Provider interface {
	// Lookup returns the value of name and whether it has one. An error
	// means the source is broken (an unreadable file); callers stop rather
	// than run without the value.
	Lookup(name string) (value string, ok bool, err error)
}

// Env is the host environment as a Provider (os.LookupEnv, or a stand-in).
type Env func(name string) (string, bool)

// Lookup implements Provider.
func (e Env) Lookup(name string) (string, bool, error) {
	v, ok := e(name)
	return v, ok, nil
}

// Chain is a list of providers; the first with a value wins.
type Chain []Provider

// Lookup implements Provider.
func (c Chain) Lookup(name string) (string, bool, error) {
	for _, p := range c {
		v, ok, err := p.Lookup(name)
		if err != nil || ok {
			return v, ok, err
		}
	}
	return "", false, nil
}

// Map is a fixed set of values (an env file, or values set in code).
type Map map[string]string

// Lookup implements Provider.
func (m Map) Lookup(name string) (string, bool, error) {
	v, ok := m[name]
	return v, ok, nil
}

// maxEnvFile bounds an env file.
const maxEnvFile = 1 << 20

// EnvFile reads a dotenv file (see ParseEnvFile).
func EnvFile(path string) (Map, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, errdefs.New(errdefs.Invalid, "env file: %v", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxEnvFile+1))
	if err != nil || len(data) > maxEnvFile {
		return nil, errdefs.New(errdefs.Invalid, "env file %s: unreadable or larger than %d bytes", path, maxEnvFile)
	}
	m, err := ParseEnvFile(data)
	if err != nil {
		return nil, errdefs.New(errdefs.Invalid, "env file %s:%v", path, err)
	}
	return m, nil
}

// ParseEnvFile parses dotenv syntax strictly:
//
//	# comment
//	NAME=value            # unquoted: trimmed; " #" starts a comment
//	export NAME=value     # "export " is allowed and ignored
//	NAME="a\nb"           # double quotes: \n \t \\ \" escapes
//	NAME='literal'        # single quotes: no escapes
//	NAME=                 # empty value
//
// A line that is not one of these, an invalid name, a name given twice, or
// an unterminated quote is an error naming the line (never its value). No
// variable expansion is done: a secret must not change with the environment.
func ParseEnvFile(data []byte) (Map, error) {
	m := Map{}
	first := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), maxEnvFile)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(strings.TrimSuffix(sc.Text(), "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		name, rest, ok := strings.Cut(line, "=")
		name = strings.TrimSpace(name)
		if !ok {
			return nil, fmt.Errorf("%d: want NAME=VALUE", n)
		}
		if !ValidName(name) {
			return nil, fmt.Errorf("%d: %q is not a valid variable name", n, name)
		}
		if prev, dup := first[name]; dup {
			return nil, fmt.Errorf("%d: %s is already set at line %d", n, name, prev)
		}
		v, err := envValue(strings.TrimLeft(rest, " \t"))
		if err != nil {
			return nil, fmt.Errorf("%d: %s: %v", n, name, err)
		}
		first[name] = n
		m[name] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%d: %v", n+1, err)
	}
	return m, nil
}

func envValue(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	switch s[0] {
	case '\'':
		end := strings.IndexByte(s[1:], '\'')
		if end < 0 {
			return "", errors.New("unterminated single quote (values span one line)")
		}
		if err := trailing(s[end+2:]); err != nil {
			return "", err
		}
		return s[1 : end+1], nil
	case '"':
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			c := s[i]
			switch {
			case c == '"':
				if err := trailing(s[i+1:]); err != nil {
					return "", err
				}
				return b.String(), nil
			case c == '\\' && i+1 < len(s):
				i++
				switch s[i] {
				case 'n':
					b.WriteByte('\n')
				case 't':
					b.WriteByte('\t')
				case 'r':
					b.WriteByte('\r')
				case '\\', '"', '$':
					b.WriteByte(s[i])
				default:
					return "", fmt.Errorf(`unknown escape \%c in double quotes`, s[i])
				}
			default:
				b.WriteByte(c)
			}
		}
		return "", errors.New("unterminated double quote (values span one line)")
	}
	if i := strings.Index(s, " #"); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	if strings.ContainsAny(s, `"'`) {
		return "", errors.New("quotes inside an unquoted value; quote the whole value")
	}
	return s, nil
}

// trailing allows only a comment after a quoted value.
func trailing(s string) error {
	s = strings.TrimSpace(s)
	if s == "" || strings.HasPrefix(s, "#") {
		return nil
	}
	return errors.New("unexpected text after the closing quote")
}

// ValidName reports whether s is a valid environment variable name: a
// letter or underscore, then letters, digits and underscores.
func ValidName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// maxSecretFile bounds one secret file.
const maxSecretFile = 64 << 10

// Dir is a folder holding one regular file per variable, named after it
// (for example /run/secrets/ETHERSCAN_API_KEY). One trailing newline is
// removed from the contents. Symlinks are followed only when they resolve
// to a regular file inside the folder (Kubernetes mounts use them).
type Dir string

// Lookup implements Provider.
func (d Dir) Lookup(name string) (string, bool, error) {
	if !ValidName(name) {
		return "", false, nil
	}
	root, err := filepath.EvalSymlinks(string(d))
	if err != nil {
		return "", false, errdefs.New(errdefs.Invalid, "secrets folder %s: %v", d, errors.Unwrap(err))
	}
	p := filepath.Join(root, name)
	real, err := filepath.EvalSymlinks(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, errdefs.New(errdefs.Invalid, "secret %s in %s: %v", name, d, errors.Unwrap(err))
	}
	if rel, err := filepath.Rel(root, real); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false, errdefs.New(errdefs.Invalid, "secret %s in %s links outside the folder", name, d)
	}
	f, err := os.Open(real)
	if err != nil {
		return "", false, errdefs.New(errdefs.Invalid, "secret %s in %s: %v", name, d, errors.Unwrap(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return "", false, errdefs.New(errdefs.Invalid, "secret %s in %s is not a regular file", name, d)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil || len(data) > maxSecretFile {
		return "", false, errdefs.New(errdefs.Invalid, "secret %s in %s: unreadable or larger than %d bytes", name, d, maxSecretFile)
	}
	s := strings.TrimSuffix(string(data), "\n")
	s = strings.TrimSuffix(s, "\r")
	return s, true, nil
}
