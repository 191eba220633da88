// Package jailbuild builds per-skill environments (skillenv.Builder) in
// internal/jail's jail: the build script runs as the jail's pid 1 on the
// base interpreter's root, with an empty tmpfs at the environment's final
// path as the only writable place besides /scratch, the host folder that
// receives the result reachable only through a descriptor, the network
// only to the configured index's hosts through the egress proxy (audited to
// egress.AuditFrom(ctx)), and a control group of its own with the build's
// memory and pids limits.
//
// It sits apart from skillenv (which runs nothing and is tested with a
// host-side builder) and from the backends (a build is no skill call and
// serves every backend that runs environments), so that skillenv imports
// no jail and internal/jail no skillenv.
package jailbuild
