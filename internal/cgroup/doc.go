// Package cgroup creates, limits, watches and removes the per-jail control
// groups skillbox uses for memory, pids and CPU limits, on cgroup v1, v2 or
// a hybrid of both (each controller is used wherever the host mounts it).
//
// Jail groups live under "skillbox" inside the cgroup the calling process
// already belongs to, so a service manager's limits and accounting still
// cover every jail.
//
// Moving a process into a cgroup by writing its pid costs milliseconds: the
// kernel takes the global cgroup_threadgroup_rwsem for writing, which waits
// for an RCU grace period (docs/PERFORMANCE.md). Instead the launching OS
// thread moves itself (v1: "0", the writer itself, into each controller's
// "tasks", which the kernel migrates without that lock; see [Group.Attach])
// before it forks, so the child is born inside; on v2 the child is created
// there with CLONE_INTO_CGROUP (see [Group.FD]).
//
// A group gets its limits only once its first process is born and the
// launching thread has left it ([Group.Start]): a thread of skillbox that
// sits in a limited group while it forks is charged for what it touches
// and can be OOM-killed with the jail. The jail's first process is skillbox's own init stage, which waits
// for its config, sent after Start returns, before it runs anything else.
package cgroup
