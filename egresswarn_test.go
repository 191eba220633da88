package skillbox

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/skillbox-dev/skillbox/audit"
	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/internal/worker"
)

// A call's denied egress becomes warnings: deduplicated, at most
// maxEgressWarnings named, the rest counted; allowed exchanges, limits and
// errors are not about the grant; hints that are no host are dropped.
func TestDeniedEgressWarnings(t *testing.T) {
	var d deniedEgress
	deny := func(host string, port int, grant, reason string) egress.Event {
		return egress.Event{Egress: audit.Egress{Host: host, Port: port, Decision: egress.DecisionDeny, Grant: grant, Reason: reason}}
	}
	d.event(deny("other.test", 443, "--allow-net other.test:443", "other.test:443 is not in the allowlist"))
	d.event(deny("other.test", 443, "--allow-net other.test:443", "other.test:443 is not in the allowlist"))
	d.event(deny("rebind.test", 80, "--egress-resolve rebind.test=127.0.0.1", "rebind.test resolves to 127.0.0.1 (loopback), which is refused unless granted by address"))
	d.event(egress.Event{Egress: audit.Egress{Host: "ok.test", Port: 443, Decision: egress.DecisionAllow}})
	d.event(egress.Event{Egress: audit.Egress{Host: "big.test", Port: 443, Decision: egress.DecisionLimit}})
	d.event(deny("", 0, "", "bad request"))
	d.attempts([]worker.NetAttempt{{Host: "other.test", Port: 443}, {Host: "hint.test", Port: 8080}, {Host: "2001:db8::1", Port: 0},
		{Host: "not a host", Port: 1}, {Host: "*.wild.test", Port: 1}, {Host: "a.test:99", Port: 1}})
	got := d.warnings(func(dest string) string { return "--allow-net " + dest })
	want := []string{
		"egress denied: the skill tried to reach other.test:443, which is not granted (grant with --allow-net other.test:443)",
		"egress denied: the skill tried to reach rebind.test:80: rebind.test resolves to 127.0.0.1 (loopback), which is refused unless granted by address (grant with --egress-resolve rebind.test=127.0.0.1)",
		"the skill tried to reach hint.test:8080, which is not granted (a hint, not a control: grant with --allow-net hint.test:8080)",
		"the skill tried to reach [2001:db8::1], which is not granted (a hint, not a control: grant with --allow-net [2001:db8::1])",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}

	var many deniedEgress
	for i := range maxEgressWarnings + 5 {
		many.attempts([]worker.NetAttempt{{Host: fmt.Sprintf("h%d.test", i), Port: 443}})
	}
	got = many.warnings(func(dest string) string { return dest })
	if len(got) != maxEgressWarnings+1 || !strings.Contains(got[maxEgressWarnings], "5 more destinations") {
		t.Errorf("cap: %d warnings, last %q", len(got), got[len(got)-1])
	}
}
