//go:build !linux

package bench

import (
	"errors"
	"os/exec"
	"time"
)

func subreaper() error { return errors.New("no child subreaper on this system") }

func uptimeTicks() int64 { return 0 }

func orphansCPU(int64) time.Duration { return 0 }

func ownSession(*exec.Cmd) {}

func treeCPU(int) time.Duration { return 0 }
