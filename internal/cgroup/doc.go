// Package cgroup creates, limits, watches and removes the per-jail control
// groups skillbox uses for memory, pids and CPU limits, on cgroup v1, v2 or
// a hybrid of both (each controller is used wherever the host mounts it).
//
// Jail groups live under "skillbox" inside the cgroup the calling process
// already belongs to, so a service manager's limits and accounting still
// cover every jail.
//
// Moving a process into a cgroup by writing cgroup.procs costs milliseconds
// (an RCU grace period). Instead the launching OS thread joins the group
// (v1: its tid into each controller's "tasks"; see [Group.Attach]) before it
// forks, so the child is born inside; on v2 the child is created there with
// CLONE_INTO_CGROUP (see [Group.FD]).
package cgroup
