"""Fixture: a deterministic prompt rewriter (pure Python, no imports beyond re)."""

import re

from skillware.core.base_skill import BaseSkill

FILLER = (
    "please",
    "kindly",
    "basically",
    "actually",
    "just",
    "really",
    "very",
    "i was wondering if",
    "could you",
    "can you",
    "i would like you to",
)


class PromptRewriterSkill(BaseSkill):
    @property
    def manifest(self):
        return {"name": "prompt_rewriter", "version": "0.2.0"}

    def _concise(self, text, options):
        removed = []
        out = text
        # Longest phrases first so "could you" goes before "you" could matter.
        for phrase in sorted(FILLER, key=lambda p: (-len(p), p)):
            pattern = re.compile(r"\b" + re.escape(phrase) + r"\b[,]?\s*", re.IGNORECASE)
            if pattern.search(out):
                removed.append(phrase)
                out = pattern.sub("", out)
        out = re.sub(r"\s+", " ", out).strip()
        out = re.sub(r"\s+([?.!,])", r"\1", out)
        if out:
            out = out[0].upper() + out[1:]
        limit = options.get("max_words")
        if limit:
            words = out.split()
            if len(words) > limit:
                out = " ".join(words[:limit]) + " ..."
        return out, sorted(removed)

    def _detailed(self, text, options):
        audience = options.get("audience", "a general reader")
        task = re.sub(r"\s+", " ", text).strip().rstrip(".?!")
        lines = [
            "Task: " + task + ".",
            "Audience: " + audience + ".",
            "Format: answer in short paragraphs; state assumptions first.",
            "Quality: say when you are unsure.",
        ]
        return "\n".join(lines), []

    def execute(self, params):
        text = params.get("prompt", "")
        style = params.get("style", "concise")
        options = params.get("options") or {}
        if style == "detailed":
            out, removed = self._detailed(text, options)
        else:
            out, removed = self._concise(text, options)
        return {
            "rewritten": out,
            "style": style,
            "stats": {
                "words_before": len(text.split()),
                "words_after": len(out.split()),
                "removed": removed,
            },
        }
