//go:build linux

package all

import _ "github.com/skillbox-dev/skillbox/sandbox/linux" // namespaces, seccomp, Landlock, cgroups

import _ "github.com/skillbox-dev/skillbox/sandbox/gvisor" // gVisor's runsc, chosen by name only
