"""Quiet output: one `compiling`/`linking` line per object and program unless verbose=1, which only changes
what is printed (never a signature); progress for training epochs and for the matrix's cells."""

from __future__ import annotations

import io
import re
import subprocess
from pathlib import Path

import pytest

from qmcu import matrix
from qmcu.errors import QmcuError
from qmcu.options import DEFAULTS, HELP, output_options, parse_options
from qmcu.train import epoch_bar
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


def test_verbose_is_an_option_kept_out_of_the_graph() -> None:
    assert DEFAULTS["verbose"] == "0" and "full command lines" in HELP["verbose"]
    assert output_options({"board": "host", "verbose": "1"}) == (True, {"board": "host"})
    assert output_options({"board": "host"}) == (False, {"board": "host"})
    assert parse_options({"verbose": "1"}) == parse_options({})  # not part of BuildOptions


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


# --- progress ----------------------------------------------------------------------------------

class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_epoch_bar_is_silent_off_a_terminal_and_erased_on_one() -> None:
    pipe = io.StringIO()
    assert list(epoch_bar(5, "training XOR (seed 42)", pipe)) == [0, 1, 2, 3, 4]
    assert pipe.getvalue() == ""
    tty = _Terminal()
    assert list(epoch_bar(5, "training XOR (seed 42)", tty)) == [0, 1, 2, 3, 4]
    drawn = tty.getvalue()
    assert "training XOR (seed 42)" in drawn and "epoch" in drawn
    assert drawn.split("\r")[-1].strip() == ""  # leave=False: the last write clears the line


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0 s"), (8.4, "8 s"), (59.6, "1 min 00 s"), (125, "2 min 05 s"), (3599, "59 min 59 s"), (3725, "1 h 02 min"),
])
def test_duration_text(seconds: float, text: str) -> None:
    assert matrix.duration_text(seconds) == text


@pytest.mark.parametrize(("done", "total", "elapsed", "text"), [
    (0, 4, 0.0, "0/4"),
    (1, 4, 10.0, "1/4, about 30 s left"),
    (3, 40, 30.0, "3/40, about 6 min 10 s left"),
    (39, 40, 0.1, "39/40, about 1 s left"),
    (4, 4, 100.0, "4/4"),
])
def test_matrix_progress_estimates_time_left_from_the_average(done: int, total: int, elapsed: float, text: str) -> None:
    assert matrix.progress_text(done, total, elapsed) == text


def test_cell_finished_prints_progress_then_the_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    matrix.start_progress(2)
    matrix.cell_finished("host/std0-float0/semihosting/xor", None, "boom")
    matrix.cell_finished("host/std0-float0/semihosting/exhaustive", None, "bang")
    first, last = _lines(capsys.readouterr().out)
    assert re.fullmatch(r"\[1/2, about \d+ s left\] host/std0-float0/semihosting/xor: FAIL boom", first)
    assert last == "[2/2] host/std0-float0/semihosting/exhaustive: FAIL bang"
