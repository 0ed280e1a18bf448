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


def test_bench_on_m4_reports_every_network(tmp_path: Path) -> None:
    env = {**os.environ, "QMCU_BUILD_DIR": str(tmp_path)}
    proc = subprocess.run([str(SCONS), "-C", str(REPO_ROOT), "-Q", "-j2", "bench", "boards=qemu-m4"], env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    bench = json.loads((tmp_path / "bench" / "bench.json").read_text())
    rows = {r["network"]: r for r in bench["rows"]}
    assert rows["2-4-1 XOR"]["macs"] == 12 and rows["64-32-10 MLP"]["macs"] == 2368
    assert rows["KWS DS-CNN"]["macs"] == 2_656_768 and rows["digits CNN"]["macs"] == 64_752
    for r in rows.values():
        assert r["instructions_min"] <= r["instructions"] <= r["instructions_max"]
        assert r["per_mac"] == round(r["instructions"] / r["macs"], 3)
    split = bench["splits"]["qemu-m4"]
    big, small = rows["64-32-10 MLP"], rows["2-4-1 XOR"]
    assert abs(split["fixed"] + split["per_mac"] * big["macs"] - big["instructions"]) < 1
    assert abs(split["fixed"] + split["per_mac"] * small["macs"] - small["instructions"]) < 1
    assert (tmp_path / "bench" / "bench.png").stat().st_size > 1000
    table = (tmp_path / "bench" / "bench.md").read_text()
    assert "| qemu-m4 | 64-32-10 MLP | 2,368 |" in table
    # The CNNs per layer: MACs, instructions, instructions per MAC (the slowest layer in plain sight).
    kws = table[table.index("KWS DS-CNN on qemu-m4, per layer:"):]
    assert "| layer0 | 320,000 | " in kws and kws.count("| 512,000 | ") == 4 and kws.count("| 72,000 | ") == 4
