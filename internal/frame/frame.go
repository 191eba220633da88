// Package frame reads the length-prefixed frames of the host↔worker
// protocol (docs/PROTOCOL.md): a 4-byte big-endian length, then that many
// bytes. It is a leaf of the standard library so that the jail's init
// stage, which reads its config as one frame, links nothing that
// internal/worker initializes.
package frame

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrTooLarge is returned (wrapped) for a frame whose declared length
// exceeds the reader's cap; nothing is allocated for it.
var ErrTooLarge = errors.New("frame too large")

// ErrEmpty is returned for a frame of declared length zero.
var ErrEmpty = errors.New("empty frame")

// Read reads one frame from r and returns its payload. It allocates at
// most max bytes. A clean EOF before the first length byte is io.EOF; EOF
// inside a frame is io.ErrUnexpectedEOF.
func Read(r io.Reader, max int) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 {
		return nil, ErrEmpty
	}
	if uint64(n) > uint64(max) {
		return nil, fmt.Errorf("%w: %d bytes declared, cap %d", ErrTooLarge, n, max)
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
