package errdefs

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestKindOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want Kind
	}{
		{"nil", nil, ""},
		{"plain", errors.New("x"), Internal},
		{"new", New(Invalid, "bad %s", "thing"), Invalid},
		{"wrapped twice", fmt.Errorf("ctx: %w", New(Denied, "no")), Denied},
		{"deadline", fmt.Errorf("read: %w", context.DeadlineExceeded), Timeout},
		{"canceled", fmt.Errorf("read: %w", context.Canceled), Canceled},
		{"canceled sentinel", fmt.Errorf("call: %w", New(Canceled, "call cancelled")), Canceled},
		{"skill", &SkillError{Type: "ValueError", Message: "m"}, Skill},
		{"limit", fmt.Errorf("call: %w", &LimitError{Resource: "memory"}), Limit},
		{"denied", &DeniedError{Permission: "env X", Grant: "--allow-env X"}, Denied},
		{"outermost wins", Wrap(Timeout, New(Internal, "inner"), "outer"), Timeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := KindOf(tt.err); got != tt.want {
				t.Errorf("KindOf(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

func TestSentinels(t *testing.T) {
	err := fmt.Errorf("outer: %w", New(Unavailable, "no landlock"))
	if !errors.Is(err, ErrUnavailable) {
		t.Error("errors.Is(err, ErrUnavailable) = false")
	}
	if errors.Is(err, ErrDenied) {
		t.Error("errors.Is(err, ErrDenied) = true for an unavailable error")
	}
	if !errors.Is(Wrap(Canceled, context.Canceled, "call cancelled"), ErrCanceled) {
		t.Error("a Canceled error does not match ErrCanceled")
	}
	if !errors.Is(&LimitError{Resource: "pids"}, ErrLimit) {
		t.Error("LimitError does not match ErrLimit")
	}
}

func TestNewWrapsCause(t *testing.T) {
	cause := errors.New("disk on fire")
	err := New(Internal, "write audit: %w", cause)
	if !errors.Is(err, cause) {
		t.Fatal("cause lost")
	}
	if got, want := err.Error(), "write audit: disk on fire"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestExitCodes(t *testing.T) {
	want := map[Kind]int{Skill: 1, Invalid: 2, NotFound: 2, Denied: 3, Timeout: 4, Limit: 4, Unavailable: 5, Unsupported: 5, Internal: 6, Canceled: 130}
	for k, code := range want {
		if got := ExitCode(k); got != code {
			t.Errorf("ExitCode(%q) = %d, want %d", k, got, code)
		}
	}
}

func TestMessages(t *testing.T) {
	d := &DeniedError{Permission: "env TOKEN", Reason: "not granted", Grant: "--allow-env TOKEN"}
	if got, want := d.Error(), "denied: env TOKEN: not granted (grant with --allow-env TOKEN)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	l := &LimitError{Resource: "memory", Limit: "64MiB", Detail: "killed by the OOM killer"}
	if got, want := l.Error(), "memory limit exceeded (64MiB): killed by the OOM killer"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestWithWarnings(t *testing.T) {
	denied := &DeniedError{Permission: "env X", Grant: "--allow-env X"}
	err := WithWarnings(fmt.Errorf("call: %w", denied), []string{"w1", "w2"})
	var d *DeniedError
	if KindOf(err) != Denied || !errors.As(err, &d) || !errors.Is(err, ErrDenied) || err.Error() != "call: "+denied.Error() {
		t.Errorf("the warned error lost its kind, chain or text: %v", err)
	}
	if got := Warnings(Wrap(Skill, err, "more")); len(got) != 2 || got[1] != "w2" {
		t.Errorf("Warnings through a wrap = %v", got)
	}
	if WithWarnings(denied, nil) != error(denied) || WithWarnings(nil, []string{"w"}) != nil || Warnings(denied) != nil {
		t.Error("WithWarnings without warnings or error, or Warnings of a plain error")
	}
}
