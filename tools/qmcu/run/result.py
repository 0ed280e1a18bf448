"""What every runner returns: raw output and exit code, nothing judged."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunResult:
    exit_code: int
    output_text: str
    wall_s: float


def last_lines(text: str, n: int = 5) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return " | ".join(lines[-n:]) if lines else "(no output at all)"
