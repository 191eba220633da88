package skillbox

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/internal/hostport"
	"github.com/skillbox-dev/skillbox/internal/worker"
)

// maxEgressWarnings bounds the destinations one call's warnings name; the
// rest are counted in one more line.
const maxEgressWarnings = 8

// deniedEgress collects, for one call, the destinations the skill tried
// to reach that its grant does not cover: the egress proxy's denials (a
// control: the request was refused) and the harness's hints (in a sandbox
// without network, where every attempt fails). It is safe for concurrent
// use: the proxy reports from its own goroutines.
type deniedEgress struct {
	mu    sync.Mutex
	seen  map[string]bool
	dests []deniedDest
	more  int
}

type deniedDest struct {
	dest string // HOST:PORT, or HOST when no port is known
	// reason and grant are the proxy's, for a denial that is not about
	// the allowlist (an address range: grant is --egress-resolve ...).
	reason, grant string
	hint          bool // from the harness, not the proxy
}

func (d *deniedEgress) add(dd deniedDest) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seen[dd.dest] {
		return
	}
	if d.seen == nil {
		d.seen = map[string]bool{}
	}
	d.seen[dd.dest] = true
	if len(d.dests) == maxEgressWarnings {
		d.more++
		return
	}
	d.dests = append(d.dests, dd)
}

// event takes a denial of the egress proxy (other decisions are not about
// the grant).
func (d *deniedEgress) event(ev egress.Event) {
	if ev.Decision != egress.DecisionDeny || ev.Host == "" || ev.Port <= 0 {
		return
	}
	dd := deniedDest{dest: net.JoinHostPort(ev.Host, strconv.Itoa(ev.Port))}
	if !strings.HasPrefix(ev.Grant, "--allow-net ") {
		dd.reason, dd.grant = ev.Reason, ev.Grant
	}
	d.add(dd)
}

// attempts takes the harness's hints, dropping what is not a host name or
// address (they come from the skill's process).
func (d *deniedEgress) attempts(as []worker.NetAttempt) {
	for _, a := range as {
		hp, err := hostport.Parse(a.Host)
		if err != nil || hp.Port != 0 || strings.HasPrefix(hp.Host, "*.") {
			continue
		}
		dest := hp.Host
		if strings.Contains(dest, ":") {
			dest = "[" + dest + "]"
		}
		if a.Port > 0 {
			dest = net.JoinHostPort(hp.Host, strconv.Itoa(a.Port))
		}
		d.add(deniedDest{dest: dest, hint: true})
	}
}

// warnings words what was collected; grant names what would grant a
// destination (policy.NetGrantHint for the call's skill and grant).
func (d *deniedEgress) warnings(grant func(dest string) string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, dd := range d.dests {
		switch {
		case dd.hint:
			out = append(out, fmt.Sprintf("the skill tried to reach %s, which is not granted (a hint, not a control: grant with %s)", dd.dest, grant(dd.dest)))
		case dd.grant != "" || dd.reason != "":
			w := fmt.Sprintf("egress denied: the skill tried to reach %s: %s", dd.dest, dd.reason)
			if dd.grant != "" {
				w += " (grant with " + dd.grant + ")"
			}
			out = append(out, w)
		default:
			out = append(out, fmt.Sprintf("egress denied: the skill tried to reach %s, which is not granted (grant with %s)", dd.dest, grant(dd.dest)))
		}
	}
	if d.more > 0 {
		out = append(out, fmt.Sprintf("the skill tried to reach %d more destinations that are not granted", d.more))
	}
	return out
}
