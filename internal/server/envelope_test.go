package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/skillbox-dev/skillbox"
)

func bigEnvelope(result string) *Envelope {
	res := &skillbox.Result{Value: json.RawMessage(result), Backend: "linux",
		Skill: skillbox.SkillInfo{ID: "a/b", Version: "1"}, Stdout: []byte("out <x>"), Warnings: []string{"w"}}
	return okEnvelope(res)
}

// TestWriteOK: a large result spliced into the envelope gives the bytes
// json.Marshal gives (HTML escapes, compaction), and headers alike.
func TestWriteOK(t *testing.T) {
	for _, r := range []string{
		`{"data":"` + strings.Repeat("ab", bigResult) + `"}`,
		"{ \"data\" : [\"<a>&\u2028\u2029\\\"\", 1 ,\n\"" + strings.Repeat("é ", bigResult) + "\"] }\n",
		`{"small":1}`,
	} {
		got, want := httptest.NewRecorder(), httptest.NewRecorder()
		writeOK(got, bigEnvelope(r))
		writeJSON(want, 200, bigEnvelope(r))
		if got.Body.String() != want.Body.String() {
			t.Errorf("writeOK wrote %.200q, writeJSON %.200q", got.Body.String(), want.Body.String())
		}
		if got.Code != want.Code || got.Header().Get("Content-Type") != want.Header().Get("Content-Type") ||
			got.Header().Get("X-Content-Type-Options") != want.Header().Get("X-Content-Type-Options") {
			t.Errorf("status or headers differ: %d %v, %d %v", got.Code, got.Header(), want.Code, want.Header())
		}
	}
	// A result that is not JSON fails as it did: 500, encode response.
	bad := httptest.NewRecorder()
	writeOK(bad, bigEnvelope(`{"data":"`+strings.Repeat("x", bigResult)))
	if bad.Code != 500 || !strings.Contains(bad.Body.String(), "encode response") {
		t.Errorf("invalid result: %d %.200s", bad.Code, bad.Body.String())
	}
}

// BenchmarkWriteOK1MB writes a success envelope with a 1 MB result:
// writeOK ("splice") and writeJSON ("marshal", what it replaced),
// alternated.
func BenchmarkWriteOK1MB(b *testing.B) {
	r := `{"data":"` + strings.Repeat("abcdefghij", 1e5) + `"}`
	for _, m := range []struct {
		name  string
		write func(http.ResponseWriter, *Envelope)
	}{
		{"splice", func(w http.ResponseWriter, e *Envelope) { writeOK(w, e) }},
		{"marshal", func(w http.ResponseWriter, e *Envelope) { writeJSON(w, 200, e) }},
	} {
		b.Run(m.name, func(b *testing.B) {
			b.SetBytes(int64(len(r)))
			for b.Loop() {
				m.write(discard{http.Header{}}, bigEnvelope(r))
			}
		})
	}
}

type discard struct{ h http.Header }

func (d discard) Header() http.Header         { return d.h }
func (d discard) Write(b []byte) (int, error) { return len(b), nil }
func (d discard) WriteHeader(int)             {}
