"""The README's shown output, generated from real runs: `python -m qmcu.readme` (or `--check`).

A generated block is a ```text fence right after a line `<!-- qmcu readme: <id> -->`. Each id names
the command that prints it (BLOCKS); the generator runs it in a fresh build folder and writes what it
printed into the block, build paths shown as `build/...`. `shape()` masks every number (and the
names a CPU's float rounding may change), so a test can check that every shown line is one the tool
prints, in its order, without pinning a figure: a change of the output must update the README.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from qmcu.errors import QmcuError
from qmcu.paths import REPO_ROOT

README = REPO_ROOT / "README.md"
MARK = re.compile(r"^<!-- qmcu readme: ([\w-]+) -->$")


@dataclass(frozen=True)
class Block:
    tool: str                # "scons" or "qmcu"
    args: tuple[str, ...]
    start: str | None = None  # show from the first line starting with this (None: everything)
    prompt: bool = False      # show the command as a first `$ ...` line


BLOCKS = {
    "first-run": Block("scons", ("board=qemu-m4", "run")),
    "your-model": Block("scons", ("model=examples/breast_cancer.py", "board=qemu-m4", "run")),
    "digits": Block("scons", ("model=digits", "board=qemu-m4", "run"), start="captured with"),
    "check": Block("qmcu", ("check", "--model", "examples/breast_cancer.py", "board=qemu-m4"), prompt=True),
    "digits-cnn": Block("scons", ("model=digits-cnn", "board=qemu-m4", "run"), start="captured with"),
    "kws-check": Block("qmcu", ("check", "--model", "examples/kws_dscnn.py", "board=qemu-m4"), prompt=True),
}


def run_block(block: Block, build_dir: Path) -> list[str]:
    """What the block's command prints in a fresh build folder, build paths shown as build/..."""
    exe = Path(sys.executable).with_name(block.tool)
    cmd = [str(exe), "-C", str(REPO_ROOT), "-Q", *block.args] if block.tool == "scons" else [str(exe), *block.args]
    env = {**os.environ, "QMCU_BUILD_DIR": str(build_dir)}
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        raise QmcuError(f"`{block.tool} {' '.join(block.args)}` failed (exit {proc.returncode}): "
                        f"{(proc.stderr or proc.stdout).strip().splitlines()[-1:]}", "fix the run first")
    lines = [ln.replace(str(build_dir), "build").replace(f"{REPO_ROOT}/", "") for ln in proc.stdout.splitlines()]
    lines = [ln for ln in lines if not ln.startswith("scons: ")]
    if block.start is not None:
        first = next((i for i, ln in enumerate(lines) if ln.startswith(block.start)), None)
        if first is None:
            raise QmcuError(f"`{' '.join(block.args)}` printed no line starting with {block.start!r}", "update BLOCKS")
        lines = lines[first:]
    return ([f"$ {block.tool} {' '.join(block.args)}"] if block.prompt else []) + lines


def blocks_in(text: str) -> dict[str, tuple[int, int]]:
    """id -> (first, last + 1) line numbers of each generated block's body in the README."""
    lines = text.splitlines()
    found: dict[str, tuple[int, int]] = {}
    for i, line in enumerate(lines):
        m = MARK.match(line)
        if m is None:
            continue
        if m.group(1) not in BLOCKS:
            raise QmcuError(f"README.md line {i + 1} names an unknown block {m.group(1)!r}",
                            f"use one of {', '.join(BLOCKS)}")
        if i + 1 >= len(lines) or lines[i + 1] != "```text":
            raise QmcuError(f"README.md line {i + 1}: the block mark must be followed by a ```text fence",
                            "put the fence right after the mark")
        end = next(j for j in range(i + 2, len(lines)) if lines[j] == "```")
        found[m.group(1)] = (i + 2, end)
    return found


def shape(line: str) -> str:
    """A line with every number masked, dictionaries of counts collapsed and the worst layer's name
    masked: what must stay the same when only the figures change."""
    line = re.sub(r"\{[^}]*\}", "{...}", line)
    line = re.sub(r"[-+]?\d+(\.\d+)?", "N", line)
    return re.sub(r"^worst layer: \S+", "worst layer: L", line)


def regenerate(check: bool = False) -> list[str]:
    """Write every generated block from a real run (check: only compare shapes); returns the problems."""
    text = README.read_text()
    lines = text.splitlines()
    problems = []
    for name, (first, end) in sorted(blocks_in(text).items(), key=lambda kv: -kv[1][0]):
        with tempfile.TemporaryDirectory() as tmp:
            fresh = run_block(BLOCKS[name], Path(tmp))
        if check:
            if [shape(ln) for ln in lines[first:end]] != [shape(ln) for ln in fresh]:
                problems.append(f"README block {name} does not show what `{' '.join(BLOCKS[name].args)}` prints")
            continue
        lines[first:end] = fresh
    if not check:
        README.write_text("\n".join(lines) + "\n")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qmcu.readme", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check the blocks' shapes against fresh runs")
    args = parser.parse_args(argv)
    try:
        problems = regenerate(check=args.check)
    except QmcuError as err:
        print(f"qmcu: error: {err}", file=sys.stderr)
        return 2
    for p in problems:
        print(f"FAIL: {p}")
    if not problems:
        print("README blocks " + ("match fresh runs" if args.check else "regenerated from fresh runs"))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
