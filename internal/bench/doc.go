// Package bench measures what one call of a skill costs on this host, in
// two kinds of mode: a whole process per call (a bare interpreter running
// the skill in-process, `skillbox run`, a peer sandbox such as bubblewrap
// around the bare run) and a call to a process that stays up between calls
// (an in-process Python server, `skillbox serve`, a Runtime in this
// process). Modes alternate round by round in one run, so the machine's
// load falls on all of them alike; every figure comes with its ratio to the
// baselines measured in the same run and with the load average before and
// after. It reports and never fails on slowness: a mode that cannot run
// here (a peer not installed, a backend the host lacks) is a row with a
// note, not an error. `skillbox bench` and scripts/compare use it.
package bench
