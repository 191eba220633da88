package skill

import (
	"math"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr string
	}{
		{in: "0", want: 0},
		{in: "1048576", want: 1 << 20},
		{in: "100B", want: 100},
		{in: "64k", want: 64 << 10},
		{in: "64K", want: 64 << 10},
		{in: "64Ki", want: 64 << 10},
		{in: "64KiB", want: 64 << 10},
		{in: "64KB", want: 64000},
		{in: "64kB", want: 64000},
		{in: "512M", want: 512 << 20},
		{in: "256MiB", want: 256 << 20},
		{in: "256MB", want: 256_000_000},
		{in: "1G", want: 1 << 30},
		{in: "1GiB", want: 1 << 30},
		{in: "1GB", want: 1e9},
		{in: "2TiB", want: 2 << 40},
		{in: "2TB", want: 2e12},
		{in: " 256 MiB ", want: 256 << 20},
		{in: "9223372036854775807", want: math.MaxInt64},
		{in: "", wantErr: "empty size"},
		{in: "   ", wantErr: "empty size"},
		{in: "-1", wantErr: "must not be negative"},
		{in: "-1MiB", wantErr: "must not be negative"},
		{in: "+1", wantErr: "must start with a whole number"},
		{in: "MiB", wantErr: "must start with a whole number"},
		{in: "1.5GiB", wantErr: "must be a whole number"},
		{in: "10mb", wantErr: "unknown unit \"mb\""},
		{in: "10 apples", wantErr: "unknown unit \"apples\""},
		{in: "1MiBB", wantErr: "unknown unit"},
		{in: "9223372036854775808", wantErr: "too large"},
		{in: "8589934592GiB", wantErr: "too large"},
		{in: "99999999999999999999999", wantErr: "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseSize(%q) = %d, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "256MiB", "1GB", "-1", "1.5G", "99999999999999999999", "64 k", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			if n != 0 {
				t.Fatalf("ParseSize(%q) = %d with error %v", s, n, err)
			}
			return
		}
		if n < 0 {
			t.Fatalf("ParseSize(%q) = %d, negative", s, n)
		}
	})
}
