"""The one exception type users see: a one-line message naming the problem and the fix."""

from __future__ import annotations


class QmcuError(Exception):
    """A user-facing error. str(err) is a single line: what is wrong, then how to fix it."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        message = problem if fix is None else f"{problem}; {fix}"
        super().__init__(" ".join(message.split()))
