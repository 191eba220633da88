package linux

import (
	"context"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/internal/worker"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// Network grants (docs/EGRESS.md). A jail with a network grant still has
// an empty network namespace. Its init stage, still privileged and inside
// that namespace, listens on 127.0.0.1:proxyPort and passes the listening
// socket to the host over the config socket (SCM_RIGHTS); the host serves
// an egress.Proxy on it, so connections made inside the jail are accepted
// by the host process directly: no forwarder, no route out. Landlock (ABI
// >= 4) allows TCP connect to proxyPort only.
//
// One proxy per jail: a zygote's proxy serves the zygote's calls one after
// the other (SetAudit and ResetBudget at the start of each, so audit events
// go to the call whose connection caused them, and MaxConns/MaxBytes are
// per call); a cold jail's proxy serves its one call; a session's serves
// the session's calls (limits per call too). The proxy is closed when its
// jail is destroyed.
const (
	proxyPort = 3128
	// caFileFallback is used when an operator read path covers the
	// directory of egress.DefaultCAFile.
	caFileFallback = "/.skillbox-egress/ca.pem"
)

var proxyAddr = "127.0.0.1:" + strconv.Itoa(proxyPort)

// egressConfig builds and validates the proxy configuration for spec, or
// returns nil when spec grants no network. mounts are the jail's (to keep
// the CA file off a read-only bind).
func (d *Driver) egressConfig(spec sandbox.Spec, mounts []mountOp) (*egress.Config, error) {
	if len(spec.Network) == 0 && len(spec.Secrets) == 0 {
		return nil, nil
	}
	cfg, err := egress.FromSpec(spec, nil)
	if err != nil {
		return nil, err
	}
	cfg.CAFile = egress.DefaultCAFile
	for _, op := range mounts {
		if op.Kind == "bind" && under(filepath.Dir(cfg.CAFile), []string{op.Dst}) {
			cfg.CAFile = caFileFallback
		}
	}
	for _, p := range spec.ReadPaths {
		if under(filepath.Dir(cfg.CAFile), []string{p}) {
			cfg.CAFile = caFileFallback
		}
	}
	// Limits stay at egress's defaults (DefaultMaxConns, DefaultMaxBytes),
	// applied per call.
	if d.egressTweak != nil {
		d.egressTweak(&cfg)
	}
	return &cfg, nil
}

// newProxy makes the proxy of one jail, reporting to audit until a call
// sets its own sink, and fills in the jail config's egress part and
// environment. The secrets' values stay in the proxy.
func (b *box) newProxy(cfg *jailConfig, audit func(egress.Event)) (*egress.Proxy, error) {
	ec := *b.egress
	ec.Audit = audit
	p, err := egress.New(ec)
	if err != nil {
		return nil, err
	}
	cfg.Egress = &egressJail{Port: proxyPort}
	if p.Intercepts() {
		// Without a host CA bundle this is the ephemeral CA alone: hosts
		// tunnelled untouched then fail verification unless the skill
		// brings its own trust; intercepted ones still work.
		bundle, _ := p.CABundle()
		cfg.Egress.CAFile, cfg.Egress.CA = ec.CAFile, bundle
	}
	env := maps.Clone(b.spec.Env)
	if env == nil {
		env = map[string]string{}
	}
	// Every request goes through the proxy.
	delete(env, "NO_PROXY")
	delete(env, "no_proxy")
	maps.Copy(env, p.Env(proxyAddr))
	cfg.Env = worker.Environ(jailScratch, env)
	return p, nil
}

// serveProxy serves p on the listening socket the init stage passed.
func (j *jail) serveProxy(p *egress.Proxy, lf *os.File, idleAudit func(egress.Event)) error {
	l, err := net.FileListener(lf)
	lf.Close()
	if err != nil {
		return err
	}
	j.proxy, j.idleAudit = p, idleAudit
	j.served = make(chan struct{})
	go func() {
		defer close(j.served)
		p.Serve(l)
	}()
	return nil
}

// beginCall points the jail's proxy at the call's audit sink and gives it
// a fresh budget. The jail serves one call at a time.
func (j *jail) beginCall(ctx context.Context) {
	if j.proxy != nil {
		j.proxy.SetAudit(egress.AuditFrom(ctx))
		j.proxy.ResetBudget()
	}
}

// endCall points the proxy back at the sink of the context that started
// the jail, for connections the skill opens outside calls (a thread that a
// zygote's import started, say).
func (j *jail) endCall() {
	if j.proxy != nil {
		j.proxy.SetAudit(j.idleAudit)
	}
}

// closeProxy stops the jail's proxy and waits for it.
func (j *jail) closeProxy() {
	if j.proxy != nil {
		j.proxy.Close()
		<-j.served
	}
}

// checkEgressHost refuses a network grant on a host whose jails would not
// have their own network namespace.
func checkEgressHost(pr *probeResult, spec sandbox.Spec) error {
	if !pr.layer(LayerNetNS).Available {
		return errdefs.New(errdefs.Unsupported, "backend linux: a network grant needs the network namespace (%s)", pr.layer(LayerNetNS).Detail)
	}
	return nil
}
