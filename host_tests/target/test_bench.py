"""`scons bench`: both networks on a QEMU board, bit-exact, with per-MAC figures, JSON, Markdown and PNG."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from qmcu.paths import REPO_ROOT
from scons_run import SCONS

pytestmark = pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="qemu-system-arm missing")


def test_bench_on_m4_reports_both_networks(tmp_path: Path) -> None:
    env = {**os.environ, "QMCU_BUILD_DIR": str(tmp_path)}
    proc = subprocess.run([str(SCONS), "-C", str(REPO_ROOT), "-Q", "-j2", "bench", "boards=qemu-m4"], env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    bench = json.loads((tmp_path / "bench" / "bench.json").read_text())
    rows = {r["network"]: r for r in bench["rows"]}
    assert rows["2-4-1 XOR"]["macs"] == 12 and rows["64-32-10 MLP"]["macs"] == 2368
    for r in rows.values():
        assert r["instructions_min"] <= r["instructions"] <= r["instructions_max"]
        assert r["per_mac"] == round(r["instructions"] / r["macs"], 3)
    split = bench["splits"]["qemu-m4"]
    big, small = rows["64-32-10 MLP"], rows["2-4-1 XOR"]
    assert abs(split["fixed"] + split["per_mac"] * big["macs"] - big["instructions"]) < 1
    assert abs(split["fixed"] + split["per_mac"] * small["macs"] - small["instructions"]) < 1
    assert (tmp_path / "bench" / "bench.png").stat().st_size > 1000
    assert "| qemu-m4 | 64-32-10 MLP | 2368 |" in (tmp_path / "bench" / "bench.md").read_text()
