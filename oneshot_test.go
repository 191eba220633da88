package skillbox_test

import (
	"context"
	"testing"

	"github.com/skillbox-dev/skillbox"
)

// TestOneShotReachesSpec: CallOptions.OneShot (the CLI's run) reaches the
// backend as Spec.OneShot, so that it prepares nothing for later calls; a
// call without it does not, nor does a session.
func TestOneShotReachesSpec(t *testing.T) {
	d := specDriver
	rt, _ := lifecycleRuntime(t)
	base := len(d.opened())
	for _, oneShot := range []bool{false, true} {
		if _, err := rt.Call(context.Background(), "test/life", nil, skillbox.CallOptions{Backend: d.name, OneShot: oneShot}); err != nil {
			t.Fatal(err)
		}
	}
	s, err := rt.OpenSession(context.Background(), "test/life", skillbox.CallOptions{Backend: d.name, OneShot: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	boxes := d.opened()[base:]
	if len(boxes) != 3 || boxes[0].spec.OneShot || !boxes[1].spec.OneShot || boxes[2].spec.OneShot {
		var got []bool
		for _, b := range boxes {
			got = append(got, b.spec.OneShot)
		}
		t.Fatalf("Spec.OneShot of the opened sandboxes: %v, want [false true false] (call, one-shot call, session)", got)
	}
}
