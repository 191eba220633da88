// Package skillenv builds and caches per-skill Python environments: a
// skill whose manifest declares requirements runs on a virtual environment
// built from exactly those requirements, with pip, keyed by a digest of
// (interpreter, normalised requirements, pip's configuration, the sdist
// choice) and shared by every skill with the same key.
//
// What is trusted and what is not. pip is Debian's wheel
// (python3-pip-whl), run from its zip by the base interpreter; the
// environment's packages are the skill's, hostile like the skill. A build
// runs as pid 1 of a jail (a Builder: internal/skillenv/jailbuild's) where the
// environment's final path is an empty tmpfs of Bounds.MaxBytes, the only
// place it can write besides its scratch space (Bounds.ScratchBytes), and
// only the configured index's hosts are reachable, through the egress
// proxy, whose decisions go to the audit sink of the build's context
// (egress.AuditFrom; the Runtime records each naming the skill and the
// environment's key). The jail is born in a control group of its own:
// Bounds.MaxMemory, which the pages of both tmpfs count against (tmpfs
// pages are charged to the writer's memory cgroup), and Bounds.MaxPids;
// a build that runs into either fails, unavailable, naming the limit, and
// the group is removed with the build. A host without the memory or pids
// controller refuses builds, naming the missing layer, unless the build
// runs best-effort (jailbuild.WithBestEffort, as a call with
// --best-effort: pids then falls back to RLIMIT_NPROC). Wheels only by
// default (installing a wheel runs none of its code); source distributions,
// whose setup scripts run during the build, only when the operator allows
// them. When pip is done, the build script (build.py) kills every other
// process of the jail and copies the environment, from a descriptor no
// package can reach, into a folder on the host: folders, regular files and
// links only, no set-id bits. The host then makes the tree its own
// (seal), records it (skillbox-env.json, with pip's resolved set) and
// renames it into place, so a reader sees a whole environment or none.
//
// pip's own configuration is honoured: the PIP_* variables that name
// sources and pip.conf files as pip finds them (IndexFromEnv); skillbox
// never interprets the files — the key covers their content, and the
// build's pip reads them at the same paths. Which hosts a build may reach
// comes from pip itself (`pip config list`, resolveSources).
//
// Layout under Cache.Dir: one folder per key (the first 32 hex digits),
// a lock file beside it (builds of one key exclude each other across
// processes), a use file (shared locks of the processes that run it:
// Cache.Use, which Prune respects), and .build-KEY-* folders of builds in
// progress (a killed build's is removed by the key's next build, or by
// Prune).
package skillenv
