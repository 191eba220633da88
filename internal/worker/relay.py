# skillbox relay: runs before the harness when the sandbox hands the worker
# only descriptors 0, 1 and 2 (gVisor's runsc). docs/PROTOCOL.md, "Relay".
#
# Requests arrive on stdin and replies leave on stdout, so they become the
# harness's descriptors 3 and 4; the skill's stdout and stderr become pipes
# of this process, which forks: the child returns and runs the harness
# (the rest of this program); this process stays the sandbox's first
# process and copies the two pipes, as frames, onto the real stderr:
# one byte of channel (1 stdout, 2 stderr, 0 end of output, 3 mark), a
# 4-byte big-endian length, the bytes. A session's harness writes a byte to
# the mark pipe (_skillbox_mark_fd) before each reply; for each byte, once
# it has forwarded what the two pipes hold, this process sends an empty
# mark frame, so the host knows when a call's output is all there. It
# sends "end" once both pipes are closed, or once the harness has exited
# and nothing more is readable, then exits with the harness's status (128
# + the signal that killed it).
def _skillbox_relay():
    import os
    import select

    global _skillbox_mark_fd
    os.dup2(0, 3)
    os.dup2(1, 4)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    mark_r, mark_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        for fd in (null, out_r, out_w, err_r, err_w, mark_r):
            os.close(fd)
        _skillbox_mark_fd = mark_w
        return
    for fd in (null, 3, 4, out_w, err_w, mark_w):
        os.close(fd)

    def frame(ch, data):
        view = memoryview(bytes((ch,)) + len(data).to_bytes(4, "big") + data)
        while view:
            view = view[os.write(2, view):]

    channels = {out_r: 1, err_r: 2}
    poller = select.poll()
    for fd in (out_r, err_r, mark_r):
        poller.register(fd, select.POLLIN)

    def pump(fd):
        data = os.read(fd, 65536)
        if data:
            frame(channels[fd], data)
        else:
            poller.unregister(fd)
            del channels[fd]

    def marks():
        asked = os.read(mark_r, 4096)
        if not asked:
            poller.unregister(mark_r)
            return
        # What the pipes hold now was written before the harness asked;
        # the bound keeps a skill that never stops printing from holding
        # the mark back forever.
        for _ in range(64):
            ready = select.select(list(channels), [], [], 0)[0]
            if not ready:
                break
            for fd in ready:
                pump(fd)
        for _ in asked:
            frame(3, b"")

    status = None
    while channels:
        events = poller.poll(0 if status is not None else 100)
        if not events and status is not None:
            break  # the harness is gone and nothing more is readable
        for fd, _ in events:
            if fd == mark_r:
                marks()
            elif fd in channels:
                pump(fd)
        while status is None:
            try:
                got, st = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if got == 0:
                break
            if got == pid:
                status = st
    try:
        frame(0, b"")
    except OSError:
        pass
    while status is None:
        try:
            got, st = os.waitpid(-1, 0)
        except ChildProcessError:
            status = 0
            break
        if got == pid:
            status = st
    if os.WIFSIGNALED(status):
        os._exit(128 + os.WTERMSIG(status))
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


_skillbox_relay()
del _skillbox_relay
