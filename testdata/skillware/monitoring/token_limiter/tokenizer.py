"""A crude, deterministic token estimator: words plus punctuation marks,
with long words counted as several tokens (about 4 characters each)."""

import re

PIECES = re.compile(r"\w+|[^\w\s]")


def pieces(text):
    return PIECES.findall(text)


def cost(piece):
    return max(1, (len(piece) + 3) // 4)


def estimate(text):
    return sum(cost(p) for p in pieces(text))
