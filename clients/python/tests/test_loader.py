import os
import unittest

from support import RUN_ARGS, Server, binary, env

from skillbox import CLIClient, HTTPClient, SkillboxError, SkillLoader, client_from_env


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


class CLITest(LoaderCases, unittest.TestCase):
    def setUp(self):
        self.loader = SkillLoader(CLIClient(binary(), RUN_ARGS, env=env()))

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


class EnvTest(unittest.TestCase):
    def test_client_from_env(self):
        c = client_from_env({"SKILLBOX_URL": "http://127.0.0.1:1/", "SKILLBOX_TOKEN": "x"})
        self.assertIsInstance(c, HTTPClient)
        self.assertEqual((c.url, c.token), ("http://127.0.0.1:1", "x"))
        c = client_from_env({"SKILLBOX_BIN": "/opt/sb", "SKILLBOX_RUN_ARGS": "--allow-env 'A B'"})
        self.assertIsInstance(c, CLIClient)
        self.assertEqual((c.binary, c.run_args), ("/opt/sb", ["--allow-env", "A B"]))

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
