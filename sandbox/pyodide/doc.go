// Package pyodide is the WebAssembly backend: each call runs the skill in
// Pyodide (CPython compiled to WebAssembly) inside a Deno process whose
// permissions deny everything the skill could use to reach the host.
//
// It is the isolating backend for hosts without Linux isolation (macOS,
// containers without namespaces) and for the strictest skills. It is built
// on Unix hosts only: on others this package is empty and registers nothing.
// Python can reach every JavaScript global through Pyodide's `js` module
// (js.Deno, js.fetch, js.Function("return this")()), so Pyodide is not the
// boundary: Deno's permissions are. Each worker runs
//
//	deno run --no-remote --no-npm --no-config --no-lock --no-prompt --no-check
//	  --cached-only --allow-read=<pyodide>,<worker folder>,/dev/fd/3,/dev/fd/5
//	  --allow-write=/dev/fd/4 --deny-net --deny-env --deny-run --deny-sys
//	  --deny-ffi --deny-import --v8-flags=--wasm-max-mem-pages=N,--max-old-space-size=M
//	  <worker folder>/worker.mjs ...
//
// with an environment of its own (DENO_DIR in the install, nothing from
// the host). --no-remote matters: without it code reached remote module
// hosts despite --deny-net (DESIGN §5). The protocol is the harness's
// (docs/PROTOCOL.md): requests on fd 3, replies on fd 4, the skill's
// stdout and stderr on fds 1 and 2; fd 5 carries a setup frame with the
// bundle's files, the files of the skill's environment when it has one, and
// the granted environment variables, which the worker copies into Pyodide's
// in-memory file system (/skill, /env/site-packages) and os.environ. Deno
// never reads the bundle or the environment on the host. The frame is read
// once per sandbox (Open); each worker decodes it into its own memory.
//
// Runtime. Deno (the @deno/<platform> npm package that the `deno` wrapper
// would install) and Pyodide come from the npm registry at pinned versions
// ([DenoVersion], [PyodideVersion]), installed by `npm ci` from a lock file
// generated with pinned sha512 integrities, into
// $XDG_CACHE_HOME/skillbox/pyodide (`skillbox setup pyodide`, or the first
// Open of the registered driver). The worker scripts (worker.mjs and the
// snapshot restore it imports, restore.mjs), the bootstrap (bootstrap.py)
// and the harness (worker.Harness) are embedded; they are written to a
// folder named by their hash, where the same Deno makes a Pyodide memory
// snapshot with the harness imported, once. Any change of versions or
// scripts means a new folder and snapshot.
//
// Semantics. The bootstrap imports the harness as a module and reuses its
// shim, skill loading, call and error encoding, so results and errors equal
// the other backends'. os._exit(n) ends the worker with code n and
// os.kill(os.getpid(), sig) with code 128+sig (WorkerExited either way).
//
// Requirements. The driver is a sandbox.EnvironmentRunner and
// EnvironmentTargeter: a skill that declares requirements gets a per-skill
// environment built by a host interpreter (EnvironmentBase: pyinterp's
// default) with pip in the environment build's jail, for Pyodide's Python
// (EnvironmentTarget: pyodide-lock.json's info.python) and with
// pure-Python wheels only (internal/skillenv's Target); anything compiled
// fails the build, unavailable, naming it (see environment.go). Its
// site-packages goes into the setup frame; the bootstrap adds
// /env/site-packages as a site directory (after the standard library,
// its .pth files processed) before the skill is imported. The
// requirements are then checked against what the worker's Python finds
// (importlib.metadata): without an environment, only Pyodide's standard
// library, and anything else is errdefs.Unavailable naming the package.
//
// Single use: one host process per sandbox, one Web Worker per call.
// Single-use calls go to a host: one long-running Deno process (worker.mjs
// in host mode, with the permission flags above plus
// --unstable-worker-options), in the same jail and cgroup a worker would
// have. It belongs to one sandbox, so to one skill and one grant set, and
// is never shared across skills or trust domains. It compiles Pyodide's
// WebAssembly once, reads the snapshot's layout once, and keeps
// Options.Idle Web Workers started: each a fresh V8 isolate given the
// compiled module, which reads the snapshot file straight into its own
// WebAssembly memory (restore.mjs: the pages that are not zero, and what
// the runtime's start wrote), with Deno permissions narrower than the process's (read the
// Pyodide and worker folders, the granted network; not the protocol
// descriptors), Pyodide restored, the bundle copied into its own
// in-memory file system — and the skill not yet imported. The Go side
// speaks the protocol of docs/PROTOCOL.md to the host, one call at a time
// per host: an init frame makes one started worker import the skill (its
// ready frame is the reply), a call frame runs that worker's one call,
// after which the host terminates the worker. Skill code therefore runs in
// at most one worker of a host at any time, and the next worker imports
// the skill only after the previous one was terminated. The host relays a
// worker's stdout and stderr (posted to it) on fds 1 and 2 before the
// reply, accepts exactly one reply frame per worker (a batch of frames
// posted as one is refused: the host is retired) and ignores everything a
// worker posts after it. A worker that ends itself (os._exit(n),
// os.kill(os.getpid(), sig)) is answered with an "exited" frame and
// reported as under Semantics: WorkerExited, "worker exited with code n", the
// call's stderr tail as traceback; its host goes on. The box re-arms a
// host (next worker imports the skill) in the background after each
// call, once the call's worker has ended, behind an output mark (the
// next call's captures start after it), retires it after Options.Recycle
// calls (policy: recycle, default 500) and on any abnormal event — a
// timeout, a harness error, a broken frame, a dead host, an OOM kill,
// output written past a call's reply, a moved working directory — and
// runs up to MaxWorkers hosts for
// concurrent calls. This is the documented exception to "no skill code in
// a process that serves more than one call" (docs/RATIONALE.md, "One
// isolate per call"): the wall between calls is the V8 isolate and Deno's
// per-worker state, not the process. Deno's Cache API is kept from
// storing anything (its folder under DENO_DIR is a read-only file), and
// caches, BroadcastChannel and Deno's internals are removed from each
// worker's globals; node:worker_threads still exports BroadcastChannel,
// which is why one skill worker at a time matters. Session mode keeps one
// worker process per session (worker.mjs run mode).
//
// Limits. The wall-clock timeout kills the worker's process group (for a
// host: the host, with the call's worker; the host also terminates a
// worker one second past the timeout on its own). On Linux, when the
// memory (and pids) cgroup controllers are usable (v1, v2 or hybrid, under
// this process's own group + "skillbox/", as the linux backend does), each
// worker process is born in its own cgroup with memory = memBaseline
// (192 MiB, an idle skill-loaded worker) + Limits.Memory and pids = 48 +
// Limits.Pids; a host's group has hostBaseline (256 MiB: the host and its
// first Web Worker) in place of memBaseline, adds Idle × isolateBaseline
// (144 MiB per further started Web Worker) and Idle+1 pids, and a call is
// armed only once the previous call's worker thread has ended (its memory
// freed) and every thread it started has too (each idle Web Worker
// thread is moved into a cgroup of its own before an import: a nested
// Worker is born in its creator's; where threads cannot be placed, each
// host serves one call, with a warning). Each isolate's WebAssembly memory
// (Python's heap) and V8 old space are capped at the group's limit, so the
// group binds; as a host runs one call at a time, the budget is the
// call's, on top of the host's baseline. An OOM kill ends the call as
// errdefs.LimitError{Resource: "memory"} (and retires the host, with its
// started workers), and memory-limit and pids-limit are
// claimed only then (see limits.go; RLIMIT_AS breaks Deno). Without the
// controllers, the heaps are bounded but not the process, so memory-limit
// is not claimed and a Spec requiring it is refused. A single-use result
// carries no MaxRSS (the host's peak is not the call's).
//
// Linux jail (defence in depth, jail_linux.go). When a jail can be built
// (root, or unprivileged user namespaces), each worker runs in one: the
// jail of internal/jail, which the linux backend uses too, with a root of
// its own (jail.Binary): read-only binds of only the Deno binary and its
// ELF dependencies, the Pyodide folder, the worker folder and Deno's
// cache, a private noexec /scratch, a /proc of the jail's processes only,
// an unprivileged uid of its own (jail.NewID), Landlock and seccomp (when the kernel has
// them; Open warns of what it lacks), no host environment, an empty
// network namespace, in the worker's cgroup. The jail's config socket
// goes after fd 5 (the setup channel). Without the jail workers run on the
// host, and every result carries the warning "pyodide: running without the
// linux jail (reason)"; Probe lists the layer linux-jail.
//
// Network grants need the jail: an egress proxy (one per worker) listens
// on jail.ProxyAddr in the worker's empty network namespace, Deno gets
// --allow-net=<granted host:port> and HTTP(S)_PROXY, so fetch to a granted
// host goes through the proxy (which checks the grant again, on the
// resolved address) and nothing else has a route; net-allowlist is
// claimed only then. Deno trusts the jail's CA bundle (--cert, written
// read-only in the jail: the host's, the operator's ca_file and, with
// bound secrets, the proxy's interception CA) besides its own roots.
// Bound secrets use the same proxy; the skill holds only the placeholder. Without the jail a grant or a bound secret
// is refused (errdefs.Unsupported), as are operator read paths.
//
// Emulation. The skill's Python is not a host process: Emscripten answers
// its system calls from an in-memory emulation. There is no fork, no
// threads, no raw system calls; getaddrinfo makes up 172.29.x.x addresses
// without asking any resolver (nothing can connect to them); writes to
// /proc or /sys land in the in-memory file system. The worker presents the
// identity nobody/nogroup (uid, euid, gid, egid 65534).
package pyodide
