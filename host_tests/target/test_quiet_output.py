"""Quiet output: one `compiling`/`linking` line per object and program unless verbose=1, which only changes
what is printed (never a signature). Progress for training epochs and for the matrix's cells: unit/test_progress.py."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from qmcu.errors import QmcuError
from qmcu.options import parse_options
from scons_run import SCONS, scons

COMPILE = re.compile(r"^compiling (firmware/\S+\.cpp) -> (\S+\.o)$")
COMMAND = re.compile(r"^\S*g\+\+ -o (\S+\.o) -c .* (\S+\.cpp)$")
UP_TO_DATE = "scons: `build' is up to date."


def _lines(text: str) -> list[str]:
    return text.splitlines()


@pytest.fixture(scope="module")
def host_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    build = tmp_path_factory.mktemp("build")
    proc = scons(build, "board=host", "build")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return build, proc


def test_default_build_prints_one_short_line_per_object_and_program(
        host_build: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    build, proc = host_build
    lines = _lines(proc.stdout)
    compiled = {m.group(1): m.group(2) for m in map(COMPILE.match, lines) if m}
    cell = build / "host-std0-float0" / "obj" / "app"
    assert compiled == {"firmware/app/model_app.cpp": str(cell / "app_model_app.o"),
                        "firmware/platform/host/platform.cpp": str(cell / "host_platform.o")}
    assert f"linking {build / 'host-std0-float0' / 'app'}" in lines
    assert not [ln for ln in lines if COMMAND.match(ln) or " -c " in ln or "-std=c++17" in ln]
    assert max(map(len, lines)) < 200
    # Training ran (model=trained) with stderr a pipe: no progress bar in the log.
    assert "capturing, calibrating and quantizing" in proc.stdout
    assert "epoch" not in proc.stderr and "%|" not in proc.stderr


def test_verbose_changes_only_what_is_printed(host_build: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    build, _ = host_build
    quiet = scons(build, "board=host", "build")
    loud = scons(build, "board=host", "build", "verbose=1")
    assert quiet.returncode == loud.returncode == 0
    assert quiet.stdout == loud.stdout and quiet.stderr == loud.stderr  # a no-op either way
    assert _lines(loud.stdout)[-1] == UP_TO_DATE
    assert "compiling" not in loud.stdout and "linking" not in loud.stdout and "g++" not in loud.stdout


def test_verbose_prints_full_command_lines_and_builds_what_a_quiet_build_would(
        host_build: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    build, _ = host_build
    loud = scons(build, "board=host", "opt=Os", "build", "verbose=1")  # a new cell: compiled here with verbose=1
    assert loud.returncode == 0, loud.stdout + loud.stderr
    lines = _lines(loud.stdout)
    commands = {Path(m.group(2)).name: m.group(1) for m in map(COMMAND.match, lines) if m}
    cell = build / "host-std0-float0-Os"
    assert commands == {"model_app.cpp": str(cell / "obj" / "app" / "app_model_app.o"),
                        "platform.cpp": str(cell / "obj" / "app" / "host_platform.o")}
    assert all("-Os" in ln for ln in lines if COMMAND.match(ln))
    assert [ln for ln in lines if re.match(rf"^\S*g\+\+ -o {re.escape(str(cell / 'app'))} ", ln)]
    assert not [ln for ln in lines if ln.startswith(("compiling ", "linking "))]
    again = scons(build, "board=host", "opt=Os", "build")  # the same signatures without verbose=
    assert again.returncode == 0 and _lines(again.stdout)[-1] == UP_TO_DATE


def test_verbose_2_is_refused_in_one_line(tmp_path: Path) -> None:
    proc = scons(tmp_path, "board=host", "build", "verbose=2")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "qmcu: error: verbose='2' is not valid; use one of 0, 1"
    with pytest.raises(QmcuError, match=r"^verbose='yes' is not valid; use one of 0, 1$"):
        parse_options({"verbose": "yes"})


def test_a_compile_error_shows_in_full_with_its_command(tmp_path: Path) -> None:
    (tmp_path / "broken.cpp").write_text("int main() { return undeclared_name; }\n")
    (tmp_path / "SConstruct").write_text(
        "import os\n"
        "from qmcu.sconsbuild import QUIET_COMSTR, show_failed_command\n"
        "env = Environment(ENV={'PATH': os.environ['PATH']}, CXX='g++')\n"
        "env.Replace(**QUIET_COMSTR, SPAWN=show_failed_command(env['SPAWN']))\n"
        "env.Program('broken', 'broken.cpp')\n")
    proc = subprocess.run([str(SCONS), "-C", str(tmp_path), "-Q"], capture_output=True, text=True, check=False,
                          timeout=120)
    assert proc.returncode != 0
    assert "compiling broken.cpp -> broken.o" in _lines(proc.stdout)
    assert "broken.cpp:1:" in proc.stderr and "undeclared_name" in proc.stderr  # the compiler's own message
    assert re.search(r'^qmcu: this command failed \(exit 1\): g\+\+ -o "?broken\.o"? -c "?broken\.cpp"?$', proc.stderr, re.M)
