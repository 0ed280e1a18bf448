"""Small pure helpers that render C++ source text (emlearn style: data in, text out)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def float_literal(x: float) -> str:
    """A float32 literal that round-trips exactly (9 significant digits)."""
    v = np.float32(x)
    text = f"{float(v):.9g}"
    if "e" not in text and "." not in text:
        text += ".0"
    return text + "f"


def int_array(ctype: str, name: str, values: Sequence[int], per_line: int = 16, indent: str = "") -> str:
    rows = [", ".join(str(int(v)) for v in values[i:i + per_line]) for i in range(0, len(values), per_line)]
    body = f",\n{indent}    ".join(rows)
    return f"{indent}constexpr {ctype} {name}[{len(values)}] = {{\n{indent}    {body}}};"


def banner(title: str, provenance: dict[str, object]) -> str:
    lines = [f"// {title}", "// GENERATED FILE - DO NOT EDIT. Regenerate with qmcu (see README)."]
    lines += [f"//   {key}: {value}" for key, value in provenance.items()]
    return "\n".join(lines)
