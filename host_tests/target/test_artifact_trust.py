"""No stale or hand-edited artifact can pass: generated files are sealed, the image is proved to hold
the integer model, an edited intmodel.json is refused, and concurrent runs in one build folder wait.

These run the real SCons build, the real cross compiler and the real QEMU (qemu-m4).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qmcu import seals
from qmcu.build.image_model import check_image_holds_model
from qmcu.errors import QmcuError
from qmcu.paths import REPO_ROOT, TEXTBOOK_HEADER
from qmcu.quant import intmodel
from scons_run import SCONS, report, scons

CELL = "qemu-m4-std0-float0"


def _passing_run(build: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = scons(build, "board=qemu-m4", *args, "run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS" in proc.stdout
    return proc


def _edit_array_entry(header: Path, array: str, index: int) -> int:
    """Change entry `index` of a generated C++ array in place; returns the new value."""
    text = header.read_text()
    m = re.search(rf"{array}\[\d+\] = \{{(.*?)\}};", text, re.S)
    assert m, f"{array} not in {header}"
    values = [int(v) for v in m.group(1).replace("\n", " ").split(",")]
    values[index] = values[index] + 1 if values[index] < 127 else values[index] - 1
    body = ", ".join(str(v) for v in values)
    header.write_text(text[:m.start(1)] + "\n    " + body + text[m.end(1):])
    return values[index]


@pytest.fixture(scope="module")
def trained_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    build = tmp_path_factory.mktemp("trust")
    _passing_run(build)
    return build


@pytest.mark.parametrize("name,array,index", [("model.hpp", "kL2Table", 137), ("weights.hpp", "kFc1Weights", 0),
                                              ("model.hpp", "kL0FoldedBiases", 1)])
def test_hand_edited_header_is_regenerated_not_used(trained_build: Path, name: str, array: str, index: int) -> None:
    header = trained_build / "models" / "trained" / name
    fresh = header.read_text()
    _edit_array_entry(header, array, index)
    proc = _passing_run(trained_build)
    assert f"{header} was changed after qmcu wrote it; regenerating it" in proc.stderr
    assert header.read_text() == fresh
    assert "image check: model constants match intmodel.json (340 bytes)" in proc.stdout
    doc = report(trained_build, "qemu-m4")
    assert doc["passed"] and doc["model_sha256"] == intmodel.load(header.with_name("intmodel.json")).digest()


def test_truncated_generated_file_is_regenerated(trained_build: Path) -> None:
    vectors = trained_build / CELL / "gen" / "app" / "vectors.hpp"
    fresh = vectors.read_text()
    vectors.write_text(fresh[: len(fresh) // 2])
    proc = _passing_run(trained_build)
    assert "vectors.hpp was changed after qmcu wrote it; regenerating it" in proc.stderr
    assert vectors.read_text() == fresh


def _flip_image_byte(elf: Path, symbol: str, offset: int) -> None:
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    with elf.open("rb") as f:
        e = ELFFile(f)
        symtab = next(s for s in e.iter_sections() if isinstance(s, SymbolTableSection))
        addr = next(s["st_value"] for s in symtab.iter_symbols() if symbol in s.name)
        sec = next(s for s in e.iter_sections() if s.header.sh_flags & 2 and s.header.sh_type != "SHT_NOBITS"
                   and s.header.sh_addr <= addr < s.header.sh_addr + s.header.sh_size)
        pos = sec.header.sh_offset + addr - sec.header.sh_addr + offset
    data = bytearray(elf.read_bytes())
    data[pos] ^= 1
    elf.write_bytes(bytes(data))


def test_image_check_rejects_an_image_that_does_not_hold_the_model(trained_build: Path) -> None:
    elf = trained_build / CELL / "app.elf"
    model = intmodel.load(trained_build / "models" / "trained" / "intmodel.json")
    assert check_image_holds_model(elf, model).endswith("(340 bytes)")
    _flip_image_byte(elf, "kL2Table", 137)
    with pytest.raises(QmcuError, match="does not hold the integer model: sigmoid table differs at byte 137"):
        check_image_holds_model(elf, model)
    # Even with its seal forged, the build refuses to run it.
    seals.record(elf)
    proc = scons(trained_build, "board=qemu-m4", "run")
    assert proc.returncode != 0
    assert "sigmoid table differs at byte 137" in proc.stderr
    assert "PASS" not in proc.stdout
    # Without the forged seal the image is simply rebuilt.
    elf.unlink()
    _passing_run(trained_build)


def test_image_check_covers_a_generated_model(tmp_path: Path) -> None:
    """qmcu_model::g_layers (generated models): flip one int16 weight of the first layer."""
    from qmcu.codegen.model_header import render_model_header

    build = tmp_path / "b"
    model_dir = build / "models" / "digits"
    # A small generated model through the same emitter the digits example uses.
    tb = intmodel.load(TEXTBOOK_HEADER.with_name("intmodel.json"))
    small = intmodel.IntModel(name="tiny", input_size=2, input_scale=tb.input_scale,
                              input_zero_point=tb.input_zero_point, layers=tb.layers)
    model_dir.mkdir(parents=True)
    header = model_dir / "model.hpp"
    header.write_text(render_model_header(small))
    src = tmp_path / "main.cpp"
    src.write_text('#include "model.hpp"\nint main() { int8_t in[2] = {0, 0}; int8_t out[1];\n'
                   "qmcu_model::forward(in, out); return out[0] == 42; }\n")
    exe = tmp_path / "tiny"
    subprocess.run(["g++", "-std=c++17", "-O2", f"-I{model_dir}", f"-I{REPO_ROOT / 'firmware' / 'runtime'}",
                    str(src), "-o", str(exe)], check=True)
    assert check_image_holds_model(exe, small).endswith("(340 bytes)")
    other = intmodel.IntModel(name="tiny", input_size=2, input_scale=tb.input_scale,
                              input_zero_point=tb.input_zero_point,
                              layers=[tb.layers[0], _bump_weight(tb.layers[1]), tb.layers[2]])
    with pytest.raises(QmcuError, match="fc2 weights differs at byte 0"):
        check_image_holds_model(exe, other)


def _bump_weight(layer: intmodel.Dense) -> intmodel.Dense:
    import dataclasses

    return dataclasses.replace(layer, weights=[layer.weights[0] - 1, *layer.weights[1:]])


def test_edited_intmodel_is_refused(tmp_path: Path) -> None:
    src = TEXTBOOK_HEADER.with_name("intmodel.json")
    doc = json.loads(src.read_text())
    doc["layers"][0]["bias"][0] += 1
    edited = tmp_path / "intmodel.json"
    edited.write_text(json.dumps(doc, indent=1))
    with pytest.raises(QmcuError, match="was edited after qmcu wrote it"):
        intmodel.load(edited)
    proc = subprocess.run([sys.executable, "-m", "qmcu.cli", "emit", "--intmodel", str(edited), "--out",
                           str(tmp_path / "w.hpp")], capture_output=True, text=True, check=False)
    assert proc.returncode != 0
    assert proc.stderr.strip().count("\n") == 0 and "was edited after qmcu wrote it" in proc.stderr
    assert not (tmp_path / "w.hpp").exists()


def test_edited_intmodel_in_the_build_is_regenerated(trained_build: Path) -> None:
    path = trained_build / "models" / "trained" / "intmodel.json"
    fresh = path.read_text()
    path.write_text(fresh.replace('"seed": 42', '"seed": 7', 1))
    proc = _passing_run(trained_build)
    assert "intmodel.json was changed after qmcu wrote it; regenerating it" in proc.stderr
    assert path.read_text() == fresh


def test_edited_committed_textbook_header_is_refused(tmp_path: Path) -> None:
    """The committed header must be exactly the emission of the committed intmodel.json."""
    header = TEXTBOOK_HEADER.with_name("model.hpp")
    original = header.read_text()
    assert "-97, -97, -96" in original
    try:
        header.write_text(original.replace("-97, -97, -96", "-97, -96, -96", 1))
        proc = scons(tmp_path, "board=qemu-m4", "model=textbook", "build")
        assert proc.returncode != 0
        assert "model.hpp is not what qmcu emits for intmodel.json" in proc.stderr
    finally:
        header.write_text(original)


def test_concurrent_runs_in_one_build_folder_wait_and_never_mix(tmp_path: Path) -> None:
    """seed=7 in the background, the default seed beside it: each run judges its own model."""
    env = {**os.environ, "QMCU_BUILD_DIR": str(tmp_path)}
    cmd = [str(SCONS), "-C", str(REPO_ROOT), "-Q", "board=qemu-m4"]
    first = subprocess.Popen([*cmd, "seed=7", "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    second = subprocess.run([*cmd, "run"], env=env, capture_output=True, text=True, timeout=300, check=False)
    out1, err1 = first.communicate(timeout=300)
    assert first.returncode == 0, out1 + err1
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"waiting for another qmcu run on {tmp_path}" in second.stderr
    assert "capturing, calibrating and quantizing" in second.stdout  # seed 42 again, not seed 7's model
    model = intmodel.load(tmp_path / "models" / "trained" / "intmodel.json")
    assert model.provenance["options"]["seed"] == 42
    assert report(tmp_path, "qemu-m4")["model_sha256"] == model.digest()
    again = scons(tmp_path, "board=qemu-m4", "run")
    assert again.returncode == 0 and "capturing" not in again.stdout
