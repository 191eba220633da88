package egress

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// replaceRef is the reference replacer: at each position the longest
// pattern found there, else the byte itself.
func replaceRef(in string, pats []pattern) string {
	var b strings.Builder
	for i := 0; i < len(in); {
		best := -1
		for j, p := range pats {
			if len(p.from) > 0 && strings.HasPrefix(in[i:], string(p.from)) && (best < 0 || len(p.from) > len(pats[best].from)) {
				best = j
			}
		}
		if best < 0 {
			b.WriteByte(in[i])
			i++
			continue
		}
		b.Write(pats[best].to)
		i += len(pats[best].from)
	}
	return b.String()
}

// FuzzReplacer checks streamed replacement, split at every read size,
// against strings.ReplaceAll (one pattern) and the reference (several,
// overlapping, one the prefix of another).
func FuzzReplacer(f *testing.F) {
	f.Add("x PLACEHOLDER y PLACEHOLDERPLACEHOLDER z PLACE", "PLACEHOLDER", "val\"ue", "PLACEHOLDERP", 3)
	f.Add(`a"b/c d a\"b/c d a%22b%2Fc+d`, `a"b/c d`, "PH", `a\"b/c d`, 1)
	f.Add("aaaaaaaaab", "aab", "X", "ab", 2)
	f.Fuzz(func(t *testing.T, in, from1, to1, from2 string, chunk int) {
		if from1 == "" || chunk <= 0 || len(in) > 4096 || len(from1)+len(to1)+len(from2) > 256 {
			return
		}
		one := []pattern{{from: []byte(from1), to: []byte(to1)}}
		check := func(pats []pattern, want string) {
			for _, n := range []int{chunk, 1, len(in) + 1} {
				got, err := io.ReadAll(newReplacer(io.NopCloser(&chunkReader{s: in, n: n}), pats))
				if err != nil || string(got) != want {
					t.Fatalf("in %q, patterns %q %q, reads of %d: got %q, want %q (%v)", in, from1, from2, n, got, want, err)
				}
			}
		}
		check(one, strings.ReplaceAll(in, from1, to1))
		if from2 != "" {
			two := append(one, pattern{from: []byte(from2), to: []byte("<2>")})
			check(two, replaceRef(in, two))
		}
	})
}

// TestReplacerBounded streams 64 MiB without a match through a redactor
// and checks that it never holds more than its cost.
func TestReplacerBounded(t *testing.T) {
	s := prepareSecret(Secret{Name: "K", Placeholder: NewPlaceholder(), Value: leakValue})
	src := io.LimitReader(zeros{}, 64<<20)
	r := newRedactor(io.NopCloser(src), []*secret{s})
	cost := r.cost()
	buf := make([]byte, 1000) // smaller than a chunk: output waits in r.out
	var total int64
	for {
		n, err := r.Read(buf)
		total += int64(n)
		if held := int64(cap(r.in) + cap(r.out)); held > cost {
			t.Fatalf("after %d bytes the redactor holds %d, over its cost %d", total, held, cost)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if total != 64<<20 {
		t.Fatalf("passed %d bytes", total)
	}
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

// TestReplacerStopsAtRefusal checks that a pattern whose hit refuses ends
// the stream before the pattern, with the refusal.
func TestReplacerStopsAtRefusal(t *testing.T) {
	refusal := deny("no", "")
	pats := []pattern{{from: []byte("PLACEHOLDER"), hit: func() error { return refusal }}}
	for chunk := 1; chunk < 30; chunk++ {
		got, err := io.ReadAll(newReplacer(io.NopCloser(&chunkReader{s: "before PLACEHOLDER after", n: chunk}), pats))
		if err != refusal || !bytes.Equal(got, []byte("before ")) {
			t.Fatalf("chunk %d: %q %v", chunk, got, err)
		}
	}
}
