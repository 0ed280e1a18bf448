"""Where data and work live, in the checkout and in an installed wheel, and the user's own boards/ beside the
built-in ones (host_tests/target/test_wheel_install.py installs a real wheel and runs it)."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path
from types import ModuleType

import pytest

from qmcu import boards, paths
from qmcu.errors import QmcuError
from qmcu.options import parse_options

REPO = Path(__file__).resolve().parents[2]


def test_in_the_checkout_everything_is_where_it_always_was() -> None:
    assert paths.FROM_CHECKOUT
    assert paths.DATA == paths.REPO_ROOT == paths.WORK_DIR == REPO
    assert paths.BOARDS_DIR == paths.USER_BOARDS_DIR == REPO / "boards"
    assert paths.FIRMWARE_DIR == REPO / "firmware" and paths.EXAMPLES_DIR == REPO / "examples"
    assert paths.scons_location() == ["-C", str(REPO)]
    assert all((paths.DATA / item).exists() for item in paths.DATA_ITEMS)
    assert not (paths.PACKAGE_DIR / "data").exists()  # the wheel's data folder exists only in a wheel


def _packaged_paths(site: Path) -> ModuleType:
    """paths.py as a wheel installs it: site/qmcu/paths.py beside site/qmcu/data/ (loaded under another name)."""
    (site / "qmcu" / "data").mkdir(parents=True)
    (site / "qmcu" / "data" / "SConstruct").write_text("")
    shutil.copy(Path(paths.__file__), site / "qmcu" / "paths.py")
    spec = importlib.util.spec_from_file_location("packaged_paths", site / "qmcu" / "paths.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_in_a_wheel_data_is_the_package_s_and_work_is_the_current_folder(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("QMCU_BUILD_DIR", raising=False)
    p = _packaged_paths(tmp_path / "site")
    data, here = (tmp_path / "site" / "qmcu" / "data").resolve(), work.resolve()
    got = {k: getattr(p, k) for k in ("FROM_CHECKOUT", "DATA", "FIRMWARE_DIR", "BOARDS_DIR", "WORK_DIR", "BUILD_DIR",
                                      "USER_BOARDS_DIR")}
    assert got == {"FROM_CHECKOUT": False, "DATA": data, "FIRMWARE_DIR": data / "firmware", "BOARDS_DIR": data / "boards",
                   "WORK_DIR": here, "BUILD_DIR": here / "build", "USER_BOARDS_DIR": here / "boards"}
    assert p.scons_location() == ["-f", str(data / "SConstruct")]
    monkeypatch.setenv("QMCU_BUILD_DIR", str(tmp_path / "elsewhere"))
    elsewhere = _packaged_paths(tmp_path / "site2").BUILD_DIR
    assert elsewhere == (tmp_path / "elsewhere").resolve()


def _board(board_id: str) -> dict[str, object]:
    raw = json.loads((paths.BOARDS_DIR / "qemu-m4.json").read_text())
    return {**raw, "id": board_id, "description": f"{board_id}: my own board"}


@pytest.fixture
def user_boards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "boards"
    folder.mkdir()
    monkeypatch.setattr(boards, "USER_BOARDS_DIR", folder)
    return folder


def test_a_user_board_is_found_beside_the_built_in_ones(user_boards: Path) -> None:
    (user_boards / "my-m4.json").write_text(json.dumps(_board("my-m4")))
    (user_boards / "schema.json").write_text("{}")  # a copy of the schema for an editor is not a board
    assert boards.board_names() == sorted([*boards.board_names(paths.BOARDS_DIR), "my-m4"])
    assert boards.board_file("my-m4") == user_boards / "my-m4.json"
    assert boards.board_file("qemu-m4") == paths.BOARDS_DIR / "qemu-m4.json"
    assert boards.load_board("my-m4").description == "my-m4: my own board"
    assert "my-m4" in [b.id for b in boards.load_all()]
    opts = parse_options({"board": "my-m4", "model": "textbook"})
    assert opts.board.id == "my-m4" and opts.board_file == user_boards / "my-m4.json"
    assert opts.build_dir.name == "my-m4-std0-float0-textbook"
    with pytest.raises(QmcuError, match=r"^unknown board 'nope'; valid boards: .*\bmy-m4\b"):
        boards.load_board("nope")


def test_a_user_board_may_not_take_a_built_in_id(user_boards: Path) -> None:
    (user_boards / "qemu-m4.json").write_text(json.dumps(_board("qemu-m4")))
    builtin = paths.BOARDS_DIR / "qemu-m4.json"
    with pytest.raises(QmcuError) as err:
        boards.board_names()
    assert str(err.value) == (f"board file {user_boards / 'qemu-m4.json'}: has the id of the built-in board 'qemu-m4' "
                              f"({builtin}); give your board its own id: rename the file and its \"id\" (e.g. my-qemu-m4)")


@pytest.mark.parametrize(("change", "error"), [
    ({"kind": "fpga"}, r"kind"),
    ({"id": "other"}, r"id"),
    ({"memory": {"flash": {"origin": "0x08000000", "size": "1MB"}, "ram": {"origin": "0x20000000", "size": 4096}}},
     r"memory\.flash\.size"),
])
def test_a_bad_user_board_is_the_same_one_line_error_as_a_built_in_one(user_boards: Path, tmp_path: Path,
                                                                         change: dict[str, object], error: str) -> None:
    raw = {**_board("my-m4"), **change}
    (user_boards / "my-m4.json").write_text(json.dumps(raw))
    as_built_in = tmp_path / "built-in"
    as_built_in.mkdir()
    (as_built_in / "my-m4.json").write_text(json.dumps(raw))
    with pytest.raises(QmcuError) as mine:
        boards.load_board("my-m4")
    with pytest.raises(QmcuError) as theirs:
        boards.load_board("my-m4", as_built_in)
    line = str(mine.value)
    assert "\n" not in line and line.startswith(f"board file {user_boards / 'my-m4.json'}: ")
    assert re.search(error, line), line
    assert line.replace(str(user_boards), str(as_built_in)) == str(theirs.value)
    (user_boards / "my-m4.json").write_text("{ not json")
    with pytest.raises(QmcuError, match=rf"^board file {re.escape(str(user_boards))}/my-m4\.json: is not valid JSON"):
        boards.load_board("my-m4")


def test_relative_model_paths_resolve_against_the_work_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from qmcu import options

    (tmp_path / "mine.py").write_text('name = "mine"\n')
    monkeypatch.setattr(options, "WORK_DIR", tmp_path)
    assert parse_options({"model": "mine.py", "board": "host"}).model_file == (tmp_path / "mine.py").resolve()
