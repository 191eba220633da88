package server

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// callHeader carries, from limitMCP to the tool handler, the key under
// which the POST of a tools/call left its call slot. The SDK gives a
// handler the POST's header (RequestExtra.Header) but not its context:
// the handler runs on the session's, which a dropped POST does not end.
// limitMCP removes the header from every request, so a client cannot
// name another POST's slot.
const callHeader = "Skillbox-Internal-Call"

// handoffs are the call slots limitMCP took for tools/call POSTs and
// their tool handlers have not yet taken over: the POST's context (it
// ends when the client goes), by key.
type handoffs struct {
	m    sync.Map // string → context.Context
	next atomic.Uint64
}

// handOver leaves the slot just taken for r's tools/call to its tool
// handler, which frees it once the call is done (takeOver). The returned
// func, called once the SDK has answered the POST, frees the slot if no
// handler took it: the SDK refused the message, or it was no tools/call
// after all, or the POST ended first.
func (s *Server) handOver(r *http.Request) (done func()) {
	key := strconv.FormatUint(s.handoffs.next.Add(1), 10)
	s.handoffs.m.Store(key, r.Context())
	r.Header.Set(callHeader, key)
	return func() {
		if _, ok := s.handoffs.m.LoadAndDelete(key); ok {
			s.calls.release()
		}
	}
}

// takeOver takes the call slot that the POST carrying a call left (extra
// is that request's), and returns a context that ends with ctx or when the
// POST ends: its client is gone, and with no event store (none is
// configured) the answer could never reach it. The SDK ends ctx itself on
// notifications/cancelled. The call holds the slot until it is done,
// whatever happens to its POST, so that --max-concurrent and a shutdown
// count it; release frees it. ok is false when there is no slot to take:
// the POST has already ended.
func (s *Server) takeOver(ctx context.Context, extra *mcp.RequestExtra) (_ context.Context, release func(), ok bool) {
	if extra == nil {
		return nil, nil, false
	}
	v, ok := s.handoffs.m.LoadAndDelete(extra.Header.Get(callHeader))
	if !ok {
		return nil, nil, false
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(v.(context.Context), cancel)
	return ctx, func() {
		stop()
		cancel()
		s.calls.release()
	}, true
}
