package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// maxLine bounds one audit line when reading; longer lines are reported as
// problems and skipped.
const maxLine = 1 << 20

// Problem is a line of the log that could not be read.
type Problem struct {
	// Line is the 1-based line number.
	Line int `json:"line"`
	// Torn is set for a last line without a newline that does not parse: a
	// write cut short (a crash, a full disk). It is expected and harmless.
	Torn bool `json:"torn,omitempty"`
	// Err says what is wrong.
	Err string `json:"error"`
}

func (p Problem) String() string {
	if p.Torn {
		return fmt.Sprintf("line %d: torn last record (a write was cut short): %s", p.Line, p.Err)
	}
	return fmt.Sprintf("line %d: malformed record: %s", p.Line, p.Err)
}

// Filter selects records; zero fields select everything.
type Filter struct {
	// Skill keeps records of this skill id (or the reference the call used).
	Skill string
	// Since keeps records at or after this time.
	Since time.Time
}

func (f Filter) match(r Record) bool {
	if f.Skill != "" && r.Skill != f.Skill {
		return false
	}
	return f.Since.IsZero() || !r.Time.Before(f.Since)
}

// Read reads a log, returning the records that match f and a Problem for
// each line that could not be read; the log continues past bad lines. The
// error is only for a failing reader.
func Read(r io.Reader, f Filter) ([]Record, []Problem, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		recs     []Record
		problems []Problem
	)
	for n := 1; ; n++ {
		line, complete, err := readLine(br)
		if err != nil && !errors.Is(err, io.EOF) {
			return recs, problems, err
		}
		if len(line) == 0 && errors.Is(err, io.EOF) {
			return recs, problems, nil
		}
		last := errors.Is(err, io.EOF) // no newline after it
		switch {
		case !complete:
			problems = append(problems, Problem{Line: n, Err: fmt.Sprintf("longer than %d bytes", maxLine)})
		case len(bytes.TrimSpace(line)) == 0:
			// blank lines are not records; ignore them
		default:
			var rec Record
			dec := json.NewDecoder(bytes.NewReader(line))
			if derr := dec.Decode(&rec); derr != nil || dec.More() || rec.Event == "" {
				msg := "not an audit record"
				if derr != nil {
					msg = derr.Error()
				}
				problems = append(problems, Problem{Line: n, Torn: last, Err: msg})
			} else if f.match(rec) {
				recs = append(recs, rec)
			}
		}
		if last {
			return recs, problems, nil
		}
	}
}

// readLine reads one line without its newline; complete is false when the
// line exceeded maxLine (the rest of it is skipped). err is io.EOF when the
// line ended at the end of the input rather than at a newline.
func readLine(br *bufio.Reader) (line []byte, complete bool, err error) {
	complete = true
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) > maxLine {
			complete = false
		} else {
			line = append(line, chunk...)
		}
		switch {
		case err == nil:
			return bytes.TrimSuffix(line, []byte{'\n'}), complete, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return line, complete, err
		}
	}
}
