"""qmcu installed from a wheel into a fresh venv runs a user's model in the user's own folder (issue 12, item 7).

The wheel is built (pip wheel --no-deps --no-build-isolation) from a copy of the working tree's files that git
would commit (tracked and untracked-but-not-ignored: what a clone or a git URL install sees, with today's edits),
so its build writes nothing into the checkout either. It is installed with a real `pip install` that brings its
dependencies from the configured index (about a minute here), and the run uses real QEMU. Nothing of the
checkout is on the new venv's path, and the commands run with the checkout (and the tree the wheel was built from,
and the installed package) mounted read-only in a private mount namespace: writing there fails the run, however
busy the checkout is with other work meanwhile.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from model_files import CIRCLE
from qmcu.paths import DATA_ITEMS, REPO_ROOT


def _clean_env() -> dict[str, str]:
    """The user's environment: no QMCU_BUILD_DIR, no venv or PYTHONPATH of this checkout, its .venv off PATH."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("QMCU_BUILD_DIR", "QMCU_BUDGETS_DIR", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(str(REPO_ROOT)))
    return env


def _run(argv: list[str | Path], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], cwd=cwd, env=_clean_env(), capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of the working tree, built from a copy of the files git would commit."""
    top = tmp_path_factory.mktemp("wheel")
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO_ROOT,
                           capture_output=True, check=True).stdout.decode().split("\0")
    src = top / "src"
    for name in filter(None, files):
        if (REPO_ROOT / name).is_file():  # a tracked file deleted in the working tree is not in it
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            (src / name).write_bytes((REPO_ROOT / name).read_bytes())
    proc = _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", top / "dist",
                 src], cwd=top)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (built,) = (top / "dist").glob("qmcu-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel and its dependencies installed by pip: its bin/ folder."""
    where = tmp_path_factory.mktemp("venv") / "venv"
    proc = _run([sys.executable, "-m", "venv", where], cwd=where.parent, timeout=120)
    assert proc.returncode == 0, proc.stderr
    proc = _run([where / "bin" / "python", "-m", "pip", "install", "-q", "--no-compile", wheel], cwd=where.parent,
                timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return where / "bin"


def test_the_wheel_holds_the_data_and_no_junk(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    # The project's build/ (qmcu/build/ is a stage of the package), caches, build products, hidden files.
    junk = [n for n in names if n.startswith(("build/", "qmcu/data/build/"))
            or re.search(r"(^|/)(__pycache__|[^/]*\.egg-info)/|\.(py[co]|o|elf|dblite)$|(^|/)\.", n)]
    assert not junk, junk
    data = {n.removeprefix("qmcu/data/") for n in names if n.startswith("qmcu/data/")}
    for item in DATA_ITEMS:  # every item, and every file git has of it
        tracked = subprocess.run(["git", "ls-files", item], cwd=REPO_ROOT, capture_output=True, text=True,
                                 check=True).stdout.split()
        assert tracked and set(tracked) <= data, item
    assert {"boards/schema.json", "boards/budgets/qemu-m4.json", "firmware/models/textbook/intmodel.json",
            "examples/xor.py", "SConstruct"} <= data
    assert {"qmcu/run/plugin/insn_window.c", "qmcu/run/plugin/qemu_plugin_api.h", "qmcu/cli.py"} <= set(names)


# Runs a command in a private mount namespace where the folders given are mounted read-only over themselves.
_READ_ONLY = ('n=$1; shift; while [ "$n" -gt 0 ]; do mount --bind -o ro "$1" "$1" || exit 97; shift; n=$((n-1)); done; '
              'exec "$@"')


def _read_only(folders: list[Path], argv: list[str | Path]) -> list[str | Path]:
    """argv run with folders read-only for it and its children alone (other processes see them as they are)."""
    user = [] if os.geteuid() == 0 else ["--map-root-user"]
    return ["unshare", "--mount", "--propagation", "private", *user, "sh", "-c", _READ_ONLY, "sh", str(len(folders)),
            *folders, *argv]


def test_an_installed_wheel_runs_a_model_in_the_user_s_own_folder(wheel: Path, venv: Path, tmp_path: Path) -> None:
    work = tmp_path / "project"
    (work / "boards").mkdir(parents=True)
    assert not work.resolve().is_relative_to(REPO_ROOT)
    (work / "my_model.py").write_text(CIRCLE)
    board = json.loads((REPO_ROOT / "boards" / "qemu-m4.json").read_text())
    (work / "boards" / "my-m4.json").write_text(json.dumps({**board, "id": "my-m4", "description": "my own M4"}))
    package = venv.parent / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages" / "qmcu"
    # The checkout, the tree the wheel was built from and the installed package are read-only for every command
    # below: a write there fails the command (Python's byte code cache is skipped silently).
    untouched = [REPO_ROOT, wheel.parents[1] / "src", package]
    probe = _run(_read_only(untouched, ["sh", "-c", 'for d; do test -w "$d" && exit 3; done; exit 0', "sh", *untouched]),
                 cwd=work)
    assert probe.returncode == 0, f"cannot mount the checkout read-only in a private mount namespace: {probe.stderr}"

    show = "from qmcu import paths; print(paths.FROM_CHECKOUT, paths.DATA, paths.BUILD_DIR)"
    where = _run(_read_only(untouched, [venv / "python", "-c", show]), cwd=work)
    assert where.stdout.split() == ["False", str(package / "data"), str(work.resolve() / "build")], where.stderr

    listed = _run(_read_only(untouched, [venv / "qmcu", "boards"]), cwd=work)
    assert listed.returncode == 0, listed.stderr
    mine = [ln for ln in listed.stdout.splitlines() if ln.startswith("my-m4 ")]
    assert len(mine) == 1 and "my own M4" in mine[0] and "qemu-m4 " in listed.stdout, listed.stdout

    for board_id in ("qemu-m4", "my-m4"):
        proc = _run(_read_only(untouched, [venv / "qmcu", "run", "--model", "my_model.py", f"board={board_id}"]), cwd=work)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out
        assert proc.stdout.splitlines()[-2] == "PASS", out
        assert re.search(r"^(\d+)/\1 bit-exact with the Python integer reference$", proc.stdout, re.MULTILINE), out
        assert f"running on {board_id} (std0-float0, semihosting, test)" in proc.stdout
        assert str(REPO_ROOT) not in out  # the firmware compiled is the wheel's
        report = json.loads((work / "build" / f"{board_id}-std0-float0-circle" / "report.json").read_text())
        assert report["passed"] and report["bit_exact"] and report["board"] == board_id

    assert sorted(p.name for p in work.iterdir()) == ["boards", "build", "my_model.py"]
