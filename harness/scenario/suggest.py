"""Did-you-mean: the nearest valid name for a misspelt one (difflib)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def nearest(word: object, candidates: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The closest candidate to `word`, or None when nothing is close enough."""
    pool = sorted({c for c in candidates if isinstance(c, str)})
    if not pool:
        return None
    text = str(word)
    found = difflib.get_close_matches(text, pool, n=1, cutoff=cutoff)
    if found:
        return found[0]
    lowered = {c.lower(): c for c in pool}
    return lowered.get(text.lower())


def unknown(
    what: str, word: object, candidates: Iterable[str], *, of: str = "", limit: int = 12
) -> str:
    """`unknown lab 'ngnix'; did you mean 'nginx'?` or, with nothing close, the valid names.
    `of` qualifies the name: unknown version '2.0' of lab 'web'."""
    pool = sorted({c for c in candidates if isinstance(c, str)})
    hint = did_you_mean(word, pool)
    head = f"unknown {what} {_q(word)}{of}"
    if hint:
        return f"{head}; {hint}"
    if not pool:
        return f"{head}; none are defined"
    shown = ", ".join(pool[:limit]) + (", ..." if len(pool) > limit else "")
    return f"{head}; expected one of: {shown}"


def did_you_mean(word: object, candidates: Iterable[str]) -> str:
    """`did you mean 'x'?` or an empty string."""
    best = nearest(word, candidates)
    return f"did you mean {best!r}?" if best is not None else ""


def _q(word: object) -> str:
    return repr(word) if isinstance(word, str) else repr(str(word))
