package worker

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	lpframe "github.com/skillbox-dev/skillbox/internal/frame"
	"github.com/skillbox-dev/skillbox/internal/jsonscan"
)

// DefaultMaxFrame is the frame cap used when none is given.
const DefaultMaxFrame = 16 << 20

// ErrFrameTooLarge is returned (wrapped) for a frame whose declared length
// exceeds the reader's cap; nothing is allocated for it.
var ErrFrameTooLarge = lpframe.ErrTooLarge

// ErrEmptyFrame is returned for a frame of declared length zero.
var ErrEmptyFrame = lpframe.ErrEmpty

// ReadFrame reads one frame from r and returns its payload (internal/frame).
// It allocates at most max bytes. A clean EOF before the first length
// byte is io.EOF; EOF inside a frame is io.ErrUnexpectedEOF.
func ReadFrame(r io.Reader, max int) ([]byte, error) { return lpframe.Read(r, max) }

// bigParams is the size of params above which a call frame is written in
// pieces, the params straight from the caller's buffer, rather than copied
// into one.
const bigParams = 64 << 10

// WriteCall writes a call frame for call, its params spliced in as they
// are rather than re-encoded: encoding/json would scan them twice more
// (to check, then to compact them) and copy them twice (issue 17 target
// 2). Small params that jsonscan does not find valid take WriteFrame's
// path, so they fail as they did. Large params are written from their own
// buffer, header and tail around them (three writes), and checked while
// they are written: the tail, without which the worker never reads the
// frame, follows only once they are found valid; invalid, the frame is
// left unfinished and WriteCall fails (the connection is then broken).
func WriteCall(w io.Writer, call Call) error {
	params := call.Params
	var valid chan bool
	if len(params) > bigParams {
		valid = make(chan bool, 1)
		go func() { valid <- jsonscan.Valid(params) }()
	} else if !jsonscan.Valid(params) {
		return WriteFrame(w, call)
	}
	call.Params = nil
	head, err := json.Marshal(call) // {"type":"call","id":N,"params":null,...}
	if err != nil {
		return err
	}
	i := bytes.Index(head, []byte(`"params":null`))
	if i < 0 {
		return fmt.Errorf("worker: call frame without params: %s", head)
	}
	i += len(`"params":`)
	tail := head[i+len("null"):]
	head = head[:i]
	n := len(head) + len(params) + len(tail)
	if uint64(n) > 1<<32-1 {
		return ErrFrameTooLarge
	}
	if len(params) <= bigParams {
		buf := make([]byte, 4, 4+n)
		binary.BigEndian.PutUint32(buf, uint32(n))
		buf = append(append(append(buf, head...), params...), tail...)
		_, err = w.Write(buf)
		return err
	}
	first := make([]byte, 4, 4+len(head))
	binary.BigEndian.PutUint32(first, uint32(n))
	for _, b := range [][]byte{append(first, head...), params} {
		if _, err := w.Write(b); err != nil {
			<-valid
			return err
		}
	}
	if !<-valid {
		return errInvalidParams
	}
	_, err = w.Write(tail)
	return err
}

// errInvalidParams is WriteCall's error for large params that are not one
// valid JSON value, found once part of the frame was written.
var errInvalidParams = errors.New("worker: call params are not valid JSON")

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
