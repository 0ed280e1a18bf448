"""The real `scons matrix` runs: the host matrix end to end, a QEMU cell over budget, the README's
`modes=xor` run against the committed budgets.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from xml.etree import ElementTree as ET

from qmcu.paths import BOARDS_DIR, REPO_ROOT
from scons_run import SCONS


def run_matrix(build: Path, budgets: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QMCU_BUILD_DIR": str(build), "QMCU_BUDGETS_DIR": str(budgets)}
    return subprocess.run([str(SCONS), "-C", str(REPO_ROOT), "-Q", "-j2", "matrix", *args], capture_output=True,
                          text=True, env=env, timeout=600, check=False)


def test_host_matrix_end_to_end_reports(tmp_path: Path) -> None:
    budgets = tmp_path / "budgets"
    budgets.mkdir()
    proc = run_matrix(tmp_path / "build", budgets, "boards=host", "modes=xor")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    out = tmp_path / "build" / "matrix"
    assert "| host | std1-float1 | stdout | xor | 4/4 | 1685/1685 |" in (out / "matrix.md").read_text()
    suite = ET.parse(out / "matrix.xml").getroot()
    assert suite.get("tests") == "4" and suite.get("failures") == "0" and len(suite.findall("testcase")) == 4
    summary = json.loads((out / "matrix.json").read_text())
    assert summary["passed"] and len(summary["cells"]) == 4
    assert "[4/4] host/" in proc.stdout


def test_qemu_matrix_over_budget_fails_and_leaves_no_success_report(tmp_path: Path) -> None:
    budgets = tmp_path / "budgets"
    budgets.mkdir()
    committed = json.loads((BOARDS_DIR / "budgets" / "qemu-m4.json").read_text())
    key = "std0-float0/semihosting/xor"
    committed["cells"] = {key: {**committed["cells"][key]}}
    committed["cells"][key]["instructions_max"] -= 1
    (budgets / "qemu-m4.json").write_text(json.dumps(committed))
    build = tmp_path / "build"
    (build / "matrix").mkdir(parents=True)
    (build / "matrix" / "matrix.json").write_text('{"passed": true}')  # a stale success from an earlier run
    proc = run_matrix(build, budgets, "boards=qemu-m4", "modes=xor")
    assert proc.returncode != 0
    assert f"FAIL: qemu-m4/{key}: instructions_max grew from" in proc.stdout
    assert json.loads((build / "matrix" / "matrix.json").read_text())["passed"] is False


def test_readme_modes_xor_runs_against_the_committed_budgets_and_fails_without_them(tmp_path: Path) -> None:
    # The README documents `scons -j2 matrix modes=xor`; it used to fail with spurious failures for the
    # exhaustive cells' budgets. Without any budgets file, a QEMU board now fails (it used to be a note).
    build = tmp_path / "build"
    empty = tmp_path / "budgets"
    empty.mkdir()
    args = ("boards=qemu-m4", "modes=xor,test")
    bare = run_matrix(build, empty, *args)
    assert bare.returncode != 0
    assert f"FAIL: qemu-m4: no budgets file {empty / 'qemu-m4.json'}" in bare.stdout, bare.stdout[-3000:]
    committed = run_matrix(build, BOARDS_DIR / "budgets", *args)
    assert committed.returncode == 0, committed.stdout[-3000:] + committed.stderr[-2000:]
    assert "| qemu-m4 | std0-float0 | semihosting | test (digits-committed) | 344/360 | 360/360 |" in committed.stdout
    assert "matrix: PASS" in committed.stdout and "11 cell(s) on target boards within their budgets" in committed.stdout
