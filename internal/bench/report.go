package bench

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Stats summarise a mode's samples.
type Stats struct {
	N    int
	P50  time.Duration
	P90  time.Duration
	Mean time.Duration
}

// Summarize returns the samples' count, median, 90th percentile and mean
// (the zero Stats for none). A percentile is the sample at that rank, not
// an interpolation: with few samples p90 is the largest but one or two.
func Summarize(samples []time.Duration) Stats {
	if len(samples) == 0 {
		return Stats{}
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return Stats{N: len(s), P50: rank(s, 50), P90: rank(s, 90), Mean: sum / time.Duration(len(s))}
}

// rank is the p-th percentile of sorted s.
func rank(s []time.Duration, p int) time.Duration {
	return s[min(len(s)-1, len(s)*p/100)]
}

// Row is one mode's result; part of `skillbox bench --json`.
type Row struct {
	Name string `json:"name"`
	Kind Kind   `json:"kind"`
	// Baseline marks the row the ratios of its kind's column divide by.
	Baseline bool    `json:"baseline,omitempty"`
	N        int     `json:"n"`
	P50MS    float64 `json:"p50_ms"`
	P90MS    float64 `json:"p90_ms"`
	MeanMS   float64 `json:"mean_ms"`
	// CPUMS is CPU time (user and system) per call: for a Process row
	// the median over its processes (each with the descendants it waited
	// for); for a Call row the mean over all calls of the serving process
	// and everything below it (Linux; clock-tick precision, so a figure
	// under a few tenths of a millisecond is rough). Zero: not measured.
	CPUMS float64 `json:"cpu_ms,omitempty"`
	// CPUVsProcess is CPUMS divided by the Process baseline's.
	CPUVsProcess float64 `json:"cpu_vs_process,omitempty"`
	// VsProcess and VsCall are P50 divided by the P50 of the Process and
	// of the Call baseline; OverCallMS is P50 minus the Call baseline's.
	// Zero when that baseline is missing.
	VsProcess  float64 `json:"vs_process,omitempty"`
	VsCall     float64 `json:"vs_call,omitempty"`
	OverCallMS float64 `json:"over_call_ms,omitempty"`
	// Skipped says why the mode did not run (or stopped); its figures are
	// then zero.
	Skipped string `json:"skipped,omitempty"`
}

// Report is a whole run; part of `skillbox bench --json`.
type Report struct {
	Time          time.Time `json:"time"`
	Skill         string    `json:"skill"`
	Python        string    `json:"python"`
	PythonVersion string    `json:"python_version"`
	Rounds        int       `json:"rounds"`
	CallsPerRound int       `json:"calls_per_round"`
	CPUs          int       `json:"cpus"`
	LoadBefore    string    `json:"load_before"`
	LoadAfter     string    `json:"load_after"`
	Rows          []Row     `json:"rows"`
}

// rows computes every mode's row and the ratios to the baselines.
func rows(results []*result) []Row {
	out := make([]Row, 0, len(results))
	var baseProc, baseCall, baseCPU time.Duration
	for _, r := range results {
		if r.mode.Baseline && r.skip == "" {
			st := Summarize(r.lat)
			if r.mode.Kind == Process {
				baseProc, baseCPU = st.P50, Summarize(r.cpu).P50
			} else {
				baseCall = st.P50
			}
		}
	}
	for _, r := range results {
		row := Row{Name: r.mode.Name, Kind: r.mode.Kind, Baseline: r.mode.Baseline, Skipped: r.skip}
		if r.skip == "" {
			st := Summarize(r.lat)
			row.N, row.P50MS, row.P90MS, row.MeanMS = st.N, ms(st.P50), ms(st.P90), ms(st.Mean)
			cpu := Summarize(r.cpu).P50
			if r.mode.Kind == Call && r.callN > 0 {
				cpu = r.callCPU / time.Duration(r.callN)
			}
			if cpu > 0 {
				row.CPUMS = ms(cpu)
				if baseCPU > 0 {
					row.CPUVsProcess = round(float64(cpu) / float64(baseCPU))
				}
			}
			if baseProc > 0 {
				row.VsProcess = round(float64(st.P50) / float64(baseProc))
			}
			if baseCall > 0 {
				row.VsCall = round(float64(st.P50) / float64(baseCall))
				row.OverCallMS = ms(st.P50 - baseCall)
			}
		}
		out = append(out, row)
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// round keeps four significant digits (a ratio of 0.0005 stays non-zero).
func round(f float64) float64 {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'g', 4, 64), 64)
	return r
}

// num formats a figure with three significant digits or so, as the
// tables of docs/PERFORMANCE.md do.
func num(f float64) string {
	switch {
	case f >= 100:
		return fmt.Sprintf("%.0f", f)
	case f >= 10:
		return fmt.Sprintf("%.1f", f)
	case f >= 1:
		return fmt.Sprintf("%.2f", f)
	case f >= 0.01:
		return fmt.Sprintf("%.3f", f)
	default:
		return fmt.Sprintf("%.2g", f)
	}
}

func ratio(f float64) string {
	if f == 0 {
		return "—"
	}
	return num(f) + "×"
}

func (r Row) kindText() string {
	if r.Kind == Process {
		return "whole process"
	}
	return "call to a running process"
}

// Header is the report's first line: what ran, where and under what load.
func (rep *Report) Header() string {
	return fmt.Sprintf("%s, skill %s, %s (Python %s), %d cores, %d rounds (%d calls per round to a running process); load average %s before, %s after",
		rep.Time.UTC().Format("2006-01-02 15:04 MST"), rep.Skill, rep.Python, rep.PythonVersion, rep.CPUs,
		rep.Rounds, rep.CallsPerRound, rep.LoadBefore, rep.LoadAfter)
}

// Markdown returns the report's table (a Markdown table, each skipped
// mode as a row with its reason) without the header line.
func (rep *Report) Markdown() string {
	var b strings.Builder
	b.WriteString("| mode | per call | p50 ms | p90 ms | p50 / bare process | p50 / in-process server | p50 − in-process server, ms | CPU ms per call | CPU / bare |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rep.Rows {
		name := r.label()
		if r.Skipped != "" {
			fmt.Fprintf(&b, "| %s | %s | skipped: %s | | | | | | |\n", name, r.kindText(), mdEscape(r.Skipped))
			continue
		}
		cpu := "—"
		if r.CPUMS > 0 {
			cpu = num(r.CPUMS)
		}
		cpuRatio := ratio(r.CPUVsProcess)
		over := "—"
		if r.VsCall > 0 {
			over = fmt.Sprintf("%+.2f", r.OverCallMS)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", name, r.kindText(), num(r.P50MS), num(r.P90MS),
			ratio(r.VsProcess), ratio(r.VsCall), over, cpu, cpuRatio)
	}
	return b.String()
}

// WriteText writes the header and an aligned plain-text table to w;
// skipped modes follow the table, each with its reason. "process" rows
// start a whole process per call; "call" rows call one that stays up.
func (rep *Report) WriteText(w io.Writer) error {
	fmt.Fprintln(w, rep.Header())
	fmt.Fprintln(w)
	width := len("mode")
	for _, r := range rep.Rows {
		width = max(width, len(r.label()))
	}
	fmt.Fprintf(w, "%-*s  %-7s  %8s  %8s  %14s  %14s  %12s\n", width, "mode", "kind", "p50 ms", "p90 ms", "/ bare process", "/ in-process", "CPU ms/call")
	var skipped []Row
	for _, r := range rep.Rows {
		if r.Skipped != "" {
			skipped = append(skipped, r)
			continue
		}
		cpu := "—"
		if r.CPUMS > 0 {
			cpu = num(r.CPUMS)
		}
		fmt.Fprintf(w, "%-*s  %-7s  %8s  %8s  %14s  %14s  %12s\n", width, r.label(), r.Kind, num(r.P50MS), num(r.P90MS), ratio(r.VsProcess), ratio(r.VsCall), cpu)
	}
	for _, r := range skipped {
		fmt.Fprintf(w, "skipped %s: %s\n", r.Name, r.Skipped)
	}
	return nil
}

func (r Row) label() string {
	if r.Baseline {
		return r.Name + " (baseline)"
	}
	return r.Name
}

// mdEscape keeps a note inside its table cell.
func mdEscape(s string) string {
	return strings.NewReplacer("|", "\\|", "\n", " ").Replace(s)
}

// Loadavg is the 1, 5 and 15 minute load averages, or "unknown".
func Loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// UpdateDoc replaces what lies between the lines begin and end in the file
// at path with text, or, when the file has no such block, appends heading
// and the block to it; the rest of the file is left as it is (others edit
// it too).
func UpdateDoc(path, heading, begin, end, text string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(old)
	block := begin + "\n" + text + end
	i, j := strings.Index(s, begin), strings.Index(s, end)
	switch {
	case i >= 0 && j > i:
		s = s[:i] + block + s[j+len(end):]
	case strings.Contains(s, heading+"\n"):
		k := strings.Index(s, heading+"\n") + len(heading) + 1
		s = s[:k] + "\n" + block + "\n" + s[k:]
	default:
		s = strings.TrimRight(s, "\n") + "\n\n" + heading + "\n\n" + block + "\n"
	}
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	return os.WriteFile(path, []byte(s), info.Mode().Perm())
}
