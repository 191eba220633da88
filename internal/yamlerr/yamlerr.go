// Package yamlerr collects the errors of a YAML file that is parsed node by
// node (manifests, policy files), so that every bad field is reported at
// once, each with its line, in one errdefs.Invalid error.
package yamlerr

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/skillbox-dev/skillbox/errdefs"
	"go.yaml.in/yaml/v3"
)

// List holds the errors found in one file. The zero value is ready to use.
type List struct {
	// File prefixes every message ("manifest.yaml", "policy /etc/x.yaml").
	File string
	errs []entry
}

type entry struct {
	line int
	msg  string
}

// Add records an error at n's line (none when n is nil); field, when not
// empty, names the field the message is about.
func (l *List) Add(n *yaml.Node, field, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	msg := fmt.Sprintf(format, args...)
	if field != "" {
		msg = field + ": " + msg
	}
	l.errs = append(l.errs, entry{line, msg})
}

// Len is the number of errors recorded.
func (l *List) Len() int { return len(l.errs) }

var yamlLine = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^yaml: line (\d+): (.*)$`) })

// Syntax records a yaml library error, one entry per line it reports, with
// the line number where the library gives one.
func (l *List) Syntax(err error) {
	for _, s := range strings.Split(err.Error(), "\n") {
		s = strings.TrimSpace(s)
		if m := yamlLine().FindStringSubmatch(s); m != nil {
			n, _ := strconv.Atoi(m[1])
			l.errs = append(l.errs, entry{n, "YAML syntax error: " + m[2]})
			continue
		}
		s = strings.TrimPrefix(s, "yaml: ")
		if s != "" && s != "unmarshal errors:" {
			l.errs = append(l.errs, entry{0, "YAML syntax error: " + s})
		}
	}
}

// Err returns nil, or an errdefs.Invalid error whose message has one
// "FILE:LINE: message" line per error, sorted by line and without
// duplicates. errors.Join of the single errors is its cause.
func (l *List) Err() error {
	if len(l.errs) == 0 {
		return nil
	}
	sort.SliceStable(l.errs, func(i, j int) bool {
		if l.errs[i].line != l.errs[j].line {
			return l.errs[i].line < l.errs[j].line
		}
		return l.errs[i].msg < l.errs[j].msg
	})
	lines := make([]string, 0, len(l.errs))
	var joined []error
	for _, e := range l.errs {
		s := fmt.Sprintf("%s: %s", l.File, e.msg)
		if e.line > 0 {
			s = fmt.Sprintf("%s:%d: %s", l.File, e.line, e.msg)
		}
		if len(lines) > 0 && lines[len(lines)-1] == s {
			continue
		}
		lines = append(lines, s)
		joined = append(joined, errdefs.New(errdefs.Invalid, "%s", s))
	}
	return &errdefs.Error{Kind: errdefs.Invalid, Msg: strings.Join(lines, "\n"), Err: errors.Join(joined...)}
}
