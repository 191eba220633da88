package loadtest

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Skill is the id of the trivial skill the load test calls.
const Skill = "load/echo"

//go:embed skills
var skills embed.FS

// WriteSkills writes the load test's skill root (holding load/echo) under
// dir and returns the root's path.
func WriteSkills(dir string) (string, error) {
	root := filepath.Join(dir, "skills")
	err := fs.WalkDir(skills, "skills", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := skills.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	return root, err
}

// Config describes one load test.
type Config struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:8080.
	URL string
	// Token is the bearer token, if the server wants one.
	Token string
	// Clients is the number of concurrent clients; Calls the calls each
	// makes, one after another.
	Clients, Calls int
	// Timeout bounds one call (30s when zero).
	Timeout time.Duration
	// Skill is the skill called (Skill, load/echo, when empty); it must
	// answer with its params, as load/echo does.
	Skill string
	// Bare means URL is not skillbox but a server whose every POST body is
	// the params and whose answer is the bare result (the baselines of
	// bench.Python.StartHTTP); Skill and Token are then unused.
	Bare bool
}

// Report is the outcome of a load test.
type Report struct {
	Clients, Calls int // as configured
	Sent           int // requests sent
	OK             int // answers with ok:true and this call's own nonce
	Failed         int // answers that came back but not ok (by status below)
	Lost           int // requests with no answer (transport errors)
	Crossed        int // ok answers carrying another call's nonce
	Duplicated     int // nonces answered more than once
	Status         map[int]int
	FirstError     string
	Elapsed        time.Duration
	P50, P90, P99  time.Duration
	Max            time.Duration
	CallsPerSecond float64
}

// Clean reports whether every call was answered once, correctly.
func (r *Report) Clean() bool {
	return r.OK == r.Clients*r.Calls && r.Failed+r.Lost+r.Crossed+r.Duplicated == 0
}

func (r *Report) String() string {
	return fmt.Sprintf("%d clients x %d calls: %d ok, %d failed, %d lost, %d crossed, %d duplicated in %v; "+
		"p50 %v p90 %v p99 %v max %v; %.0f calls/s; statuses %v",
		r.Clients, r.Calls, r.OK, r.Failed, r.Lost, r.Crossed, r.Duplicated, r.Elapsed.Round(time.Millisecond),
		r.P50.Round(10*time.Microsecond), r.P90.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond),
		r.Max.Round(10*time.Microsecond), r.CallsPerSecond, r.Status)
}

type answer struct {
	status  int
	nonce   string
	latency time.Duration
	err     error
}

// Run runs the load test and returns its report. ctx cancels it.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Clients <= 0 || cfg.Calls <= 0 {
		return nil, fmt.Errorf("loadtest: want positive clients and calls, got %d and %d", cfg.Clients, cfg.Calls)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	tr := &http.Transport{MaxIdleConnsPerHost: cfg.Clients, MaxConnsPerHost: cfg.Clients, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: cfg.Timeout}
	if cfg.Skill == "" {
		cfg.Skill = Skill
	}
	url := cfg.URL + "/v1/skills/" + cfg.Skill + "/call"
	if cfg.Bare {
		url = cfg.URL
	}

	answers := make([][]answer, cfg.Clients)
	var wg sync.WaitGroup
	start := time.Now()
	for c := range cfg.Clients {
		answers[c] = make([]answer, 0, cfg.Calls)
		wg.Go(func() {
			for i := range cfg.Calls {
				if ctx.Err() != nil {
					return
				}
				answers[c] = append(answers[c], call(ctx, client, url, cfg.Token, cfg.Bare, fmt.Sprintf("c%d-%d", c, i)))
			}
		})
	}
	wg.Wait()
	rep := &Report{Clients: cfg.Clients, Calls: cfg.Calls, Status: map[int]int{}, Elapsed: time.Since(start)}
	seen := map[string]int{}
	var lat []time.Duration
	for c, as := range answers {
		for i, a := range as {
			rep.Sent++
			want := fmt.Sprintf("c%d-%d", c, i)
			switch {
			case a.err != nil:
				rep.Lost++
				if rep.FirstError == "" {
					rep.FirstError = a.err.Error()
				}
				continue
			case a.status != http.StatusOK:
				rep.Failed++
			case a.nonce != want:
				rep.Crossed++
			default:
				rep.OK++
				lat = append(lat, a.latency)
			}
			rep.Status[a.status]++
			if a.nonce != "" {
				seen[a.nonce]++
				if seen[a.nonce] == 2 {
					rep.Duplicated++
				}
			}
		}
	}
	slices.Sort(lat)
	if n := len(lat); n > 0 {
		rep.P50, rep.P90, rep.P99, rep.Max = lat[n*50/100], lat[n*90/100], lat[n*99/100], lat[n-1]
	}
	rep.CallsPerSecond = float64(rep.OK) / rep.Elapsed.Seconds()
	return rep, ctx.Err()
}

func call(ctx context.Context, client *http.Client, url, token string, bare bool, nonce string) answer {
	body, _ := json.Marshal(map[string]string{"nonce": nonce})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return answer{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, latency: time.Since(start), err: err}
	type result struct {
		Nonce string `json:"nonce"`
	}
	var env struct {
		OK     bool   `json:"ok"`
		Result result `json:"result"`
		Error  *struct {
			Kind, Message string
		} `json:"error"`
	}
	if err == nil && bare {
		var r result
		if jerr := json.Unmarshal(b, &r); jerr != nil {
			a.err = fmt.Errorf("answer is not JSON: %v: %.200s", jerr, b)
		}
		a.nonce = r.Nonce
		return a
	}
	if err == nil {
		if jerr := json.Unmarshal(b, &env); jerr != nil {
			a.err = fmt.Errorf("answer is not JSON: %v: %.200s", jerr, b)
		} else if env.OK {
			a.nonce = env.Result.Nonce
		} else if env.Error != nil && a.status == http.StatusOK {
			a.status = 0
		}
	}
	return a
}
