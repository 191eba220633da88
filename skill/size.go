package skill

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// sizeUnits maps size suffixes to multipliers. Single letters and the IEC
// forms (Ki, KiB, ...) are binary, as in Kubernetes' "Ki" and Docker's "k";
// the SI forms with a B (KB, MB, ...) are decimal. Suffixes are case
// sensitive except that "k" and "K" are both accepted.
var sizeUnits = map[string]int64{
	"": 1, "B": 1,
	"k": 1 << 10, "K": 1 << 10, "Ki": 1 << 10, "KiB": 1 << 10, "KB": 1e3, "kB": 1e3,
	"M": 1 << 20, "Mi": 1 << 20, "MiB": 1 << 20, "MB": 1e6,
	"G": 1 << 30, "Gi": 1 << 30, "GiB": 1 << 30, "GB": 1e9,
	"T": 1 << 40, "Ti": 1 << 40, "TiB": 1 << 40, "TB": 1e12,
}

// ParseSize parses a byte size: a whole number of bytes ("1048576") or a
// whole number followed by a unit, optionally after a space: k, K, Ki, KiB =
// 1024; KB, kB = 1000; M, Mi, MiB = 1<<20; MB = 10^6; G, Gi, GiB = 1<<30;
// GB = 10^9; T, Ti, TiB = 1<<40; TB = 10^12; B = 1. Fractions, signs,
// negative values and results above math.MaxInt64 are errors.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("empty size; want bytes or a number with a unit such as \"256MiB\"")
	}
	if strings.HasPrefix(t, "-") {
		return 0, fmt.Errorf("size %q must not be negative", s)
	}
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("size %q must start with a whole number, e.g. \"256MiB\"", s)
	}
	digits, unit := t[:i], strings.TrimLeft(t[i:], " ")
	if strings.HasPrefix(unit, ".") || strings.HasPrefix(unit, ",") {
		return 0, fmt.Errorf("size %q must be a whole number; use a smaller unit (\"1536MiB\", not \"1.5GiB\")", s)
	}
	mult, ok := sizeUnits[unit]
	if !ok {
		return 0, fmt.Errorf("size %q has an unknown unit %q (use B, k/K/KiB, KB, M/MiB, MB, G/GiB, GB, T/TiB, TB)", s, unit)
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q is too large (the limit is %d bytes)", s, int64(math.MaxInt64))
	}
	return n * mult, nil
}

// FormatSize renders n bytes in the largest binary unit that divides them
// ("256MiB", "64KiB", "1000B"): what ParseSize reads back as n.
func FormatSize(n int64) string {
	for _, u := range []struct {
		unit  string
		bytes int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.bytes && n%u.bytes == 0 {
			return strconv.FormatInt(n/u.bytes, 10) + u.unit
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}
