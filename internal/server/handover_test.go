package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// A tools/call's slot goes from its POST to its tool handler exactly once:
// the handler that takes it frees it when the call is done, and its
// context ends with the POST; a POST that ends first frees it itself, and
// the handler then finds nothing to take (the call does not run).
func TestSlotHandOver(t *testing.T) {
	s := &Server{calls: newLimiter(1)}
	// post takes the slot for a POST, as limitMCP does, and hands it over.
	post := func() (end context.CancelFunc, done func(), h http.Header) {
		ctx, cancel := context.WithCancel(context.Background())
		r := httptest.NewRequest("POST", "/mcp", nil).WithContext(ctx)
		if !s.calls.tryAcquire() {
			t.Fatal("no free slot")
		}
		return cancel, s.handOver(r), r.Header
	}

	end, done, h := post()
	ctx, release, ok := s.takeOver(context.Background(), &mcp.RequestExtra{Header: h})
	if !ok {
		t.Fatal("the handler found no slot to take")
	}
	done() // the POST answered: the slot is the call's now
	if n := s.calls.inFlight(); n != 1 {
		t.Fatalf("in flight after the POST ended under a running call: %d, want 1", n)
	}
	end()
	<-ctx.Done() // the call ends with its POST
	release()
	if n := s.calls.inFlight(); n != 0 || !s.calls.free() {
		t.Fatalf("in flight after the call was done: %d, want 0", n)
	}

	end, done, h = post()
	end()
	done() // the POST ended before the handler ran
	if n := s.calls.inFlight(); n != 0 {
		t.Fatalf("in flight after a POST ended with its slot untaken: %d, want 0", n)
	}
	if _, _, ok := s.takeOver(context.Background(), &mcp.RequestExtra{Header: h}); ok {
		t.Error("a handler took the slot of a POST that had ended")
	}
	if _, _, ok := s.takeOver(context.Background(), nil); ok {
		t.Error("a handler took a slot with no header")
	}
}
