"""A run's reports are its own: deleted when the run starts, written whole at its end, so a failed run
never leaves the previous run's report.json saying "passed": true."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qmcu.errors import QmcuError
from qmcu.judge import run_and_judge
from qmcu.options import parse_options
from qmcu.quant import intmodel
from scons_run import scons

REPORTS = ("report.json", "layers.csv", "surface.png")


@pytest.fixture(scope="module")
def host_program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("g++") is None:
        pytest.skip("g++ missing (tools/setup.sh installs it)")
    build = tmp_path_factory.mktemp("reports")
    proc = scons(build, "board=host", "model=textbook", "build")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return build / "host-std0-float0-textbook" / "app"


@pytest.mark.parametrize("failure", ["crash", "timeout", "garbage"])
def test_a_failed_run_leaves_no_report_of_the_previous_pass(host_program: Path, tmp_path: Path, failure: str) -> None:
    opts = parse_options({"board": "host", "model": "textbook", "timeout": "2"})
    model = intmodel.load(opts.model_dir / "intmodel.json")
    program = tmp_path / "app"
    shutil.copy2(host_program, program)
    assert run_and_judge.run(opts, program, model)["passed"] is True
    assert all((tmp_path / name).is_file() for name in REPORTS)

    # The same cell again, with a program that fails before its END record.
    body = {"crash": "echo started; kill -SEGV $$", "timeout": "exec sleep 30", "garbage": "echo 'QM what'"}
    program.unlink()
    program.write_text(f"#!/bin/sh\n{body[failure]}\n")
    program.chmod(0o755)
    with pytest.raises(QmcuError):
        run_and_judge.run(opts, program, model)
    assert [name for name in REPORTS if (tmp_path / name).exists()] == []
    assert not list(tmp_path.glob(".*.tmp")), "a half-written report was left behind"
