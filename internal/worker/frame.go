package worker

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// DefaultMaxFrame is the frame cap used when none is given.
const DefaultMaxFrame = 16 << 20

// ErrFrameTooLarge is returned (wrapped) for a frame whose declared length
// exceeds the reader's cap; nothing is allocated for it.
var ErrFrameTooLarge = errors.New("frame too large")

// ErrEmptyFrame is returned for a frame of declared length zero.
var ErrEmptyFrame = errors.New("empty frame")

// ReadFrame reads one frame from r and returns its payload. It allocates at
// most max bytes. A clean EOF before the first length byte is io.EOF; EOF
// inside a frame is io.ErrUnexpectedEOF.
func ReadFrame(r io.Reader, max int) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 {
		return nil, ErrEmptyFrame
	}
	if uint64(n) > uint64(max) {
		return nil, fmt.Errorf("%w: %d bytes declared, cap %d", ErrFrameTooLarge, n, max)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// WriteFrame encodes v as JSON and writes it as one frame with a single
// Write call.
func WriteFrame(w io.Writer, v any) error {
	payload, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(payload) > 1<<32-1 {
		return ErrFrameTooLarge
	}
	buf := make([]byte, 4+len(payload))
	binary.BigEndian.PutUint32(buf, uint32(len(payload)))
	copy(buf[4:], payload)
	_, err = w.Write(buf)
	return err
}
