//go:build linux

package jail

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"
)

// TestWriteConfigRawArgs: arguments from the first long one on leave the
// JSON frame and follow it as raw frames, in order, empty ones included;
// the caller's config is not changed.
func TestWriteConfigRawArgs(t *testing.T) {
	long := strings.Repeat("A", rawArg)
	for _, argv := range [][]string{
		{"/usr/bin/python3", "-c", "pass"},
		{"/usr/bin/python3", "-c", long, "", "tail", strings.Repeat("B", 3*rawArg)},
	} {
		cfg := &config{Argv: slices.Clone(argv), Env: []string{"A=1"}}
		var buf bytes.Buffer
		if err := writeConfig(&buf, cfg); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(cfg.Argv, argv) || cfg.RawArgs != 0 {
			t.Fatalf("writeConfig changed its config: %q, %d", cfg.Argv, cfg.RawArgs)
		}
		frame := func() []byte {
			var n uint32
			if err := binary.Read(&buf, binary.BigEndian, &n); err != nil {
				t.Fatal(err)
			}
			b := make([]byte, n)
			if _, err := io.ReadFull(&buf, b); err != nil {
				t.Fatal(err)
			}
			return b
		}
		var got config
		if err := json.Unmarshal(frame(), &got); err != nil {
			t.Fatal(err)
		}
		for range got.RawArgs {
			got.Argv = append(got.Argv, string(frame()))
		}
		if !slices.Equal(got.Argv, argv) || buf.Len() != 0 {
			t.Fatalf("argv %q (%d raw, %d bytes left), want %q", got.Argv, got.RawArgs, buf.Len(), argv)
		}
	}
}
