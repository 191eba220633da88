package cgroup

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Controllers skillbox uses.
const (
	Memory = "memory"
	Pids   = "pids"
	CPU    = "cpu"
)

// Host describes where this host mounts each controller.
type Host struct {
	// V2 is the cgroup2 mount point, or "" if none.
	V2 string
	// V2Controllers are the controllers enabled at the v2 mount.
	V2Controllers []string
	// V1 maps a controller name to its v1 hierarchy mount point.
	V1 map[string]string
	// self maps a hierarchy ("" for v2, else a controller) to the calling
	// process's cgroup path within it.
	self map[string]string
}

// Detect reads /proc/self/mountinfo and /proc/self/cgroup.
func Detect() (*Host, error) {
	h := &Host{V1: map[string]string{}, self: map[string]string{}}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent maj:min root mountpoint opts ... - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 {
			continue
		}
		switch qf[0] {
		case "cgroup2":
			if h.V2 == "" {
				h.V2 = pf[4]
			}
		case "cgroup":
			for _, o := range strings.Split(qf[2], ",") {
				if o == Memory || o == Pids || o == CPU {
					if _, dup := h.V1[o]; !dup {
						h.V1[o] = pf[4]
					}
				}
			}
		}
	}
	if h.V2 != "" {
		b, _ := os.ReadFile(filepath.Join(h.V2, "cgroup.controllers"))
		h.V2Controllers = strings.Fields(string(b))
	}
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			h.self[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			h.self[c] = parts[2]
		}
	}
	return h, nil
}

// Where reports how controller c is available: version 1 or 2 and the
// directory of the calling process's own group in that hierarchy; version
// 0 when the host does not offer it. v1 wins on hybrid hosts, where the v1
// hierarchy is the one that owns the controller.
func (h *Host) Where(c string) (version int, dir string) {
	if mp, ok := h.V1[c]; ok {
		return 1, filepath.Join(mp, h.self[c])
	}
	if h.V2 != "" && slices.Contains(h.V2Controllers, c) {
		return 2, filepath.Join(h.V2, h.self[""])
	}
	return 0, ""
}

// Describe says where c is, for doctor output.
func (h *Host) Describe(c string) string {
	switch v, dir := h.Where(c); v {
	case 1:
		return fmt.Sprintf("cgroup v1 at %s", dir)
	case 2:
		return fmt.Sprintf("cgroup v2 at %s", dir)
	}
	return "controller not mounted (neither v1 nor enabled in v2)"
}
