import os
import shutil
import signal
import tempfile
import threading
import time
import unittest

from support import BACKEND, RUN_ARGS, TEST_SKILLS, Server, binary, env

from skillbox import CLIClient, HTTPClient, SkillboxError, SkillLoader, StdioClient, client_from_env


class LoaderCases:
    """Cases every client must pass; subclasses set self.loader."""

    def test_load_skill(self):
        b = self.loader.load_skill("text/word_stats")
        self.assertEqual(b["id"], "text/word_stats")
        self.assertEqual(b["manifest"]["name"], "word_stats")
        self.assertIn("parameters", b["manifest"])
        self.assertTrue(b["instructions"].strip())
        self.assertIsInstance(b["card"], dict)
        self.assertTrue(b["digest"].startswith("sha256:"))

    def test_execute(self):
        b = self.loader.load_skill("text/word_stats")
        out = b["skill"].execute({"text": "One two. Three!"})
        self.assertEqual(out["words"], 3)
        self.assertEqual(b["execute"]({"text": "x"})["words"], 1)
        self.assertEqual(b["skill"].last_call["skill"]["id"], "text/word_stats")
        self.assertEqual(b["class"]().execute({"text": "a b"})["words"], 2)

    def test_skill_raises(self):
        b = self.loader.load_skill("test/raises")
        with self.assertRaises(SkillboxError) as cm:
            b["skill"].execute({})
        self.assertEqual(cm.exception.kind, "skill")
        self.assertEqual(cm.exception.type, "ValueError")
        self.assertIn("bad wallet address", cm.exception.message)
        # What the skill printed before it raised comes with the error.
        self.assertEqual(cm.exception.stdout, "checked the address\n")
        self.assertEqual(cm.exception.stderr, "")

    def test_invalid_params(self):
        b = self.loader.load_skill("text/word_stats")
        with self.assertRaises(SkillboxError) as cm:
            b["skill"].execute({"text": 3})
        self.assertEqual(cm.exception.kind, "invalid")

    def test_not_found(self):
        with self.assertRaises(SkillboxError) as cm:
            self.loader.load_skill("test/no_such_skill")
        self.assertEqual(cm.exception.kind, "not_found")

    def test_list(self):
        ids = [s["id"] for s in self.loader.list_skills()]
        self.assertIn("test/echo", ids)
        self.assertIn("text/word_stats", ids)


class PathCases:
    """Cases for clients that load a skill by its folder's path."""

    def folder(self, answer):
        """A copy of test/echo outside the roots (same id) that answers
        {"from": answer}; returns its path."""
        tmp = tempfile.mkdtemp(prefix="skillbox-path-")
        self.addCleanup(shutil.rmtree, tmp, True)
        path = os.path.join(tmp, "test", "echo")
        shutil.copytree(os.path.join(TEST_SKILLS, "test", "echo"), path)
        self.answer(path, answer)
        return path

    def answer(self, path, answer):
        with open(os.path.join(path, "skill.py"), "w") as f:
            f.write(
                "from skillware.core.base_skill import BaseSkill\n\n\n"
                "class Echo(BaseSkill):\n"
                "    def execute(self, params):\n"
                "        return {'from': %r}\n" % answer
            )

    def test_load_by_path_runs_that_folder(self):
        path = self.folder("the folder")
        b = self.loader.load_skill(path)
        self.assertEqual(b["id"], "test/echo")
        # Not the root's test/echo, which has the same id.
        self.assertEqual(b["skill"].execute({}), {"from": "the folder"})
        self.assertEqual(b["skill"].last_call["skill"]["digest"], b["digest"])
        self.assertEqual(b["class"]().execute({}), {"from": "the folder"})

    def test_changed_skill_is_refused(self):
        path = self.folder("before")
        b = self.loader.load_skill(path)
        self.answer(path, "after")
        with self.assertRaises(SkillboxError) as cm:
            b["skill"].execute({})
        self.assertEqual(cm.exception.kind, "denied")
        self.assertIn("changed since it was loaded", cm.exception.message)
        self.assertIn(b["digest"], cm.exception.message)


class CLITest(LoaderCases, PathCases, unittest.TestCase):
    def setUp(self):
        self.loader = SkillLoader(CLIClient(binary(), RUN_ARGS, env=env()))

    @unittest.skipUnless(BACKEND == "process", "the pidfile is a host path, which only the process backend lets a skill write")
    def test_timeout_stops_skillbox(self):
        tmp = tempfile.mkdtemp(prefix="skillbox-timeout-")
        self.addCleanup(shutil.rmtree, tmp, True)
        pidfile = os.path.join(tmp, "slow")
        client = CLIClient(binary(), RUN_ARGS, env=env(), timeout=5)
        with self.assertRaises(SkillboxError) as cm:
            client.call("test/sleep", {"seconds": 60, "pidfile": pidfile})
        self.assertEqual(cm.exception.kind, "timeout")
        # SIGTERM, not SIGKILL: skillbox cancelled the call itself.
        self.assertIn("skillbox was stopped (SIGTERM)", cm.exception.message)
        if not os.path.exists(pidfile):
            return  # so loaded a machine that the skill never started: nothing ran to kill
        _wait_killed("the timed-out call's process", pidfile)

    def test_missing_binary(self):
        loader = SkillLoader(CLIClient("/nonexistent/skillbox"))
        with self.assertRaises(SkillboxError) as cm:
            loader.load_skill("text/word_stats")
        self.assertEqual(cm.exception.kind, "unavailable")


class HTTPTest(LoaderCases, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(token="t0ken")

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def setUp(self):
        self.loader = SkillLoader(HTTPClient(self.server.url, "t0ken"))

    def test_wrong_token(self):
        with self.assertRaises(SkillboxError) as cm:
            SkillLoader(HTTPClient(self.server.url, "nope")).load_skill("text/word_stats")
        self.assertEqual(cm.exception.kind, "denied")

    def test_schema_endpoint(self):
        c = HTTPClient(self.server.url, "t0ken")
        b = self.loader.load_skill("text/word_stats")
        self.assertEqual(c.schema("text/word_stats", "gemini"), SkillLoader.to_gemini_tool(b))

    def test_unreachable(self):
        with self.assertRaises(SkillboxError) as cm:
            HTTPClient("http://127.0.0.1:9", timeout=5).list()
        self.assertEqual(cm.exception.kind, "unavailable")


def _wait_for(what, cond, seconds=30):
    """Poll cond until it holds; fail naming what after seconds (a bound
    against hangs, not a speed check)."""
    end = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("gave up waiting for " + what)
        time.sleep(0.05)


def _wait_killed(what, pidfile):
    """Wait until the process whose pid pidfile holds is gone."""
    with open(pidfile) as f:
        pid = int(f.read())

    def gone():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    _wait_for(what + " to be killed", gone)


class StdioTest(LoaderCases, PathCases, unittest.TestCase):
    def setUp(self):
        self.client = StdioClient(binary(), RUN_ARGS, env=env())
        self.addCleanup(self.client.close)
        self.loader = SkillLoader(self.client)
        self.tmp = tempfile.mkdtemp(prefix="skillbox-stdio-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def child(self):
        return self.client._server.proc

    def test_one_child_serves_every_call(self):
        # Calls after the first cannot start skillbox: its binary is gone.
        exe = os.path.join(self.tmp, "skillbox")
        shutil.copy(binary(), exe)
        self.client = StdioClient(exe, RUN_ARGS, env=env())
        self.addCleanup(self.client.close)
        b = SkillLoader(self.client).load_skill("test/echo")
        self.assertEqual(b["execute"]({"n": 0}), {"params": {"n": 0}})
        first = self.child().pid
        os.remove(exe)
        for i in range(1, 6):
            self.assertEqual(b["execute"]({"n": i}), {"params": {"n": i}})
        self.assertEqual(self.child().pid, first)
        self.assertEqual(b["skill"].last_call["backend"], BACKEND)
        self.assertEqual(b["skill"].last_call["skill"]["id"], "test/echo")

    @unittest.skipUnless(BACKEND == "process", "the pidfile is a host path, which only the process backend lets a skill write")
    def test_each_call_gets_a_fresh_process(self):
        pids = set()
        for i in range(3):
            pidfile = os.path.join(self.tmp, "pid%d" % i)
            self.client.call("test/sleep", {"seconds": 0, "pidfile": pidfile})
            with open(pidfile) as f:
                pids.add(f.read())
        self.assertEqual(len(pids), 3)

    def test_concurrent_calls(self):
        results, errors = {}, []

        def caller(t):
            try:
                for j in range(4):
                    n = t * 10 + j
                    results[n] = self.client.call("test/echo", {"n": n})["result"]
            except Exception as e:  # reported below, with the thread's values
                errors.append(e)

        threads = [threading.Thread(target=caller, args=(t,)) for t in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(len(results), 24)
        for n, r in results.items():
            self.assertEqual(r, {"params": {"n": n}})

    def test_skill_output_and_warnings(self):
        env = self.client.call("test/echo", {"msg": "hi"})
        self.assertEqual(env["ok"], True)
        self.assertEqual(env["result"], {"params": {"msg": "hi"}})
        if BACKEND == "process":
            self.assertTrue(any("isolates nothing" in w for w in env.get("warnings", [])), env)

    def test_unserved_id_goes_through_run(self):
        # A folder path is never a served tool: `skillbox run` takes it.
        folder = os.path.join(TEST_SKILLS, "test", "echo")
        env = self.client.call(folder, {"msg": "by path"})
        self.assertEqual(env["result"], {"params": {"msg": "by path"}})

    def test_child_that_died_is_replaced(self):
        self.client.call("test/echo", {})
        old = self.child()
        old.kill()
        _wait_for("the client to see its child go", lambda: self.client._server.failure is not None)
        self.assertEqual(self.client.call("test/echo", {"n": 1})["result"], {"params": {"n": 1}})
        self.assertNotEqual(self.child().pid, old.pid)

    @unittest.skipUnless(BACKEND == "process", "the pidfile is a host path, which only the process backend lets a skill write")
    def test_call_in_flight_when_child_dies(self):
        pidfile = os.path.join(self.tmp, "inflight")
        raised = []

        def call():
            try:
                self.client.call("test/sleep", {"seconds": 60, "pidfile": pidfile})
            except SkillboxError as e:
                raised.append(e)

        t = threading.Thread(target=call)
        t.start()
        _wait_for("the call to start", lambda: os.path.exists(pidfile))
        self.child().kill()
        t.join(60)
        self.assertFalse(t.is_alive())
        self.assertEqual(len(raised), 1)
        self.assertEqual(raised[0].kind, "unavailable")
        self.assertIn("serve --stdio exited", raised[0].message)

    @unittest.skipUnless(BACKEND == "process", "the pidfile is a host path, which only the process backend lets a skill write")
    def test_timeout_cancels_the_call(self):
        client = StdioClient(binary(), RUN_ARGS, env=env(), timeout=5)
        self.addCleanup(client.close)
        client.call("test/echo", {})  # the child is up: the timeout counts the call alone
        pidfile = os.path.join(self.tmp, "slow")
        with self.assertRaises(SkillboxError) as cm:
            client.call("test/sleep", {"seconds": 60, "pidfile": pidfile})
        self.assertEqual(cm.exception.kind, "timeout")
        end = time.monotonic() + 3
        while not os.path.exists(pidfile) and time.monotonic() < end:
            time.sleep(0.05)
        if not os.path.exists(pidfile):
            return  # so loaded a machine that the skill never started: nothing ran to kill
        _wait_killed("the cancelled call's process", pidfile)
        self.assertEqual(client.call("test/echo", {"n": 2})["result"], {"params": {"n": 2}})

    @unittest.skipUnless(BACKEND == "process", "the pidfile is a host path, which only the process backend lets a skill write")
    def test_interrupt_cancels_the_call(self):
        pidfile = os.path.join(self.tmp, "interrupted")

        def interrupt():
            _wait_for("the call to start", lambda: os.path.exists(pidfile))
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

        t = threading.Thread(target=interrupt)
        t.start()
        with self.assertRaises(KeyboardInterrupt):
            self.client.call("test/sleep", {"seconds": 60, "pidfile": pidfile})
        t.join()
        _wait_killed("the interrupted call's process", pidfile)
        self.assertEqual(self.client.call("test/echo", {"n": 4})["result"], {"params": {"n": 4}})

    def test_forked_copy_starts_its_own_child(self):
        self.client.call("test/echo", {})
        parent_child = self.child().pid
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the forked copy: report what its call got, then go
            signal.alarm(120)  # a copy that hangs dies, and the test fails
            code = 1
            try:
                out = self.client.call("test/echo", {"n": 5})["result"]
                mine = self.client._server.proc.pid
                os.write(w, repr((out, mine != parent_child)).encode())
                self.client.close()
                code = 0
            finally:
                os._exit(code)
        os.close(w)
        with os.fdopen(r) as f:
            got = f.read()
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0, got)
        self.assertEqual(got, repr(({"params": {"n": 5}}, True)))
        self.assertEqual(self.client.call("test/echo", {"n": 6})["result"], {"params": {"n": 6}})
        self.assertEqual(self.child().pid, parent_child)

    def test_bad_flag(self):
        client = StdioClient(binary(), ["--no-such-flag"], env=env())
        self.addCleanup(client.close)
        with self.assertRaises(SkillboxError) as cm:
            client.call("test/echo", {})
        self.assertEqual(cm.exception.kind, "invalid")
        self.assertIn("no-such-flag", cm.exception.message)

    def test_missing_binary(self):
        with self.assertRaises(SkillboxError) as cm:
            StdioClient("/nonexistent/skillbox").call("test/echo", {})
        self.assertEqual(cm.exception.kind, "unavailable")

    def test_close(self):
        self.client.call("test/echo", {})
        child = self.child()
        self.client.close()
        self.assertIsNotNone(child.poll())
        self.assertEqual(self.client.call("test/echo", {"n": 3})["result"], {"params": {"n": 3}})


class EnvTest(unittest.TestCase):
    def test_client_from_env(self):
        c = client_from_env({"SKILLBOX_URL": "http://127.0.0.1:1/", "SKILLBOX_TOKEN": "x"})
        self.assertIsInstance(c, HTTPClient)
        self.assertEqual((c.url, c.token), ("http://127.0.0.1:1", "x"))
        c = client_from_env({"SKILLBOX_BIN": "/opt/sb", "SKILLBOX_RUN_ARGS": "--allow-env 'A B'"})
        self.assertIs(type(c), CLIClient)
        self.assertEqual((c.binary, c.run_args), ("/opt/sb", ["--allow-env", "A B"]))
        c = client_from_env({"SKILLBOX_BIN": "/opt/sb", "SKILLBOX_STDIO": "1", "SKILLBOX_RUN_ARGS": "--allow-env A"})
        self.assertIsInstance(c, StdioClient)
        self.assertEqual((c.binary, c.run_args), ("/opt/sb", ["--allow-env", "A"]))

    def test_class_level_load_skill(self):
        # Skillware style: SkillLoader.load_skill(id) with the environment.
        saved = dict(os.environ)
        new = env(SKILLBOX_BIN=binary(), SKILLBOX_RUN_ARGS=" ".join(RUN_ARGS))
        try:
            os.environ.clear()
            os.environ.update(new)
            b = SkillLoader.load_skill("test/echo")
            self.assertEqual(b["execute"]({"msg": "hi"}), {"params": {"msg": "hi"}})
        finally:
            os.environ.clear()
            os.environ.update(saved)


if __name__ == "__main__":
    unittest.main()
