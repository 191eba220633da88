package egress

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// A bound host is asked for identity encoding; one that compresses anyway
// is decoded so that its body can be redacted. These bound what that costs.
const (
	// maxCodings is the most content codings stacked on one response.
	maxCodings = 2
	// flateCost is what a gzip or deflate decoder holds (its 32 KiB window,
	// tables and input buffer), rounded up.
	flateCost = 64 << 10
	// maxZstdWindow is the largest zstd window decoded: RFC 9659's limit
	// for the zstd content coding.
	maxZstdWindow = 8 << 20
)

// decodeBody replaces a compressed response body by its decoding, and
// drops Content-Encoding. It refuses codings it cannot decode, and
// charges each decoder's memory to the request.
func (p *Proxy) decodeBody(res *http.Response, st *reqState) *denial {
	all, codings := contentCodings(res.Header)
	if len(codings) == 0 {
		return nil
	}
	bad := func(format string, args ...any) *denial {
		return &denial{status: http.StatusBadGateway, decision: DecisionError,
			reason: fmt.Sprintf("response Content-Encoding %q cannot be inspected for secrets: ", all) + fmt.Sprintf(format, args...)}
	}
	if len(codings) > maxCodings {
		return bad("more than %d codings stacked", maxCodings)
	}
	body := &decoded{Reader: res.Body, closers: []io.Closer{res.Body}}
	// The last coding listed was applied last: undo it first.
	for i := len(codings) - 1; i >= 0; i-- {
		in := bufio.NewReader(body.Reader)
		if _, err := in.Peek(1); err == io.EOF {
			break // an empty body: nothing to decode
		} else if err != nil {
			return &denial{status: http.StatusBadGateway, decision: DecisionError, reason: "reading the response: " + err.Error()}
		}
		r, cost, err := decoder(codings[i], in)
		if err != nil {
			return bad("%v", err)
		}
		if d := p.hold(st, cost+int64(in.Size()), "decoding a "+codings[i]+" response"); d != nil {
			return d
		}
		body.Reader = r
		if c, ok := r.(io.Closer); ok {
			body.closers = append([]io.Closer{c}, body.closers...)
		}
	}
	res.Body = body
	res.Header.Del("Content-Encoding")
	res.ContentLength = -1
	return nil
}

// contentCodings returns h's Content-Encoding, every line of it joined as
// one list (a field repeated on several lines is one list: RFC 9110,
// section 5.3), and its codings other than identity, lower-cased, in the
// order they were applied.
func contentCodings(h http.Header) (all string, codings []string) {
	all = strings.Join(h.Values("Content-Encoding"), ", ")
	for c := range strings.SplitSeq(all, ",") {
		if c = strings.ToLower(strings.TrimSpace(c)); c != "" && c != "identity" {
			codings = append(codings, c)
		}
	}
	return all, codings
}

// decoder returns a reader decoding coding from in, and what it holds.
func decoder(coding string, in *bufio.Reader) (io.Reader, int64, error) {
	switch coding {
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(in)
		return zr, flateCost, err
	case "deflate":
		// HTTP's deflate is zlib; some servers send raw deflate.
		b, err := in.Peek(2)
		if err == nil && b[0]&0x0f == 8 && (int(b[0])<<8|int(b[1]))%31 == 0 {
			zr, err := zlib.NewReader(in)
			return zr, flateCost, err
		}
		return flate.NewReader(in), flateCost, nil
	case "br":
		b, _ := in.Peek(1)
		window, err := brotliWindow(b[0])
		if err != nil {
			return nil, 0, err
		}
		return brotli.NewReader(in), window + flateCost, nil
	case "zstd":
		window := zstdWindow(in)
		if window > maxZstdWindow {
			return nil, 0, fmt.Errorf("zstd window of %d bytes, over %d", window, maxZstdWindow)
		}
		zr, err := zstd.NewReader(in, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(uint64(max(window, zstd.MinWindowSize))))
		if err != nil {
			return nil, 0, err
		}
		return zstdReader{zr}, window + 256<<10, nil
	}
	return nil, 0, fmt.Errorf("unknown coding %q", coding)
}

// brotliWindow is the window a brotli stream declares in its first byte
// (RFC 7932, section 9.1).
func brotliWindow(b byte) (int64, error) {
	bits := 16
	switch n, m := b>>1&7, b>>4&7; {
	case b&1 == 0:
	case n != 0:
		bits = 17 + int(n)
	case m == 1:
		return 0, errors.New("large-window brotli")
	case m != 0:
		bits = 8 + int(m)
	default:
		bits = 17
	}
	return 1<<bits - 16, nil
}

// zstdWindow is the window the first zstd frame declares, or the largest
// accepted when it cannot be read (the decoder then enforces that).
func zstdWindow(in *bufio.Reader) int64 {
	b, _ := in.Peek(zstd.HeaderMaxSize)
	var h zstd.Header
	if h.Decode(b) != nil || h.Skippable {
		return maxZstdWindow
	}
	if h.SingleSegment {
		return int64(min(h.FrameContentSize, maxZstdWindow+1))
	}
	return int64(min(h.WindowSize, maxZstdWindow+1))
}

// zstdReader frees a zstd decoder when closed.
type zstdReader struct{ *zstd.Decoder }

func (z zstdReader) Close() error {
	z.Decoder.Close()
	return nil
}

// decoded is a decoded body; closing it closes its decoders and the
// original body.
type decoded struct {
	io.Reader
	closers []io.Closer
}

func (d *decoded) Close() error {
	var first error
	for _, c := range d.closers {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
