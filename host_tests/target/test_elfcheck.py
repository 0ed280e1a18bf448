"""The image checks' branches that real FLOAT=0 builds never reach, on small ELFs built here.

A FLOAT=0 corner is compiled soft-float, so the compiler never emits a VFP instruction and the
FLOAT=0 instruction scan never has anything to find. These tests plant one with inline assembly in a
program built for an FPU core (softfp and hard ABIs), without any C float code (so no soft-float
routine is linked and only the instruction scan can notice), and check image_sizes' RAM/flash split on a
.data-heavy image against an independent oracle: the section flags readelf reports.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from platform_apps import PROGRAMS
from qmcu.boards import Corner
from qmcu.build import elfcheck
from qmcu.errors import QmcuError

TOOLS = ("arm-none-eabi-gcc", "arm-none-eabi-nm", "arm-none-eabi-objdump", "arm-none-eabi-size", "arm-none-eabi-readelf")
FPU_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16"]
Build = Callable[[str, "str | None"], Path]  # (float ABI, planted asm or None) -> ELF


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (tools/setup.sh installs them)")
    root = tmp_path_factory.mktemp("elfcheck")
    counter = [0]

    def _build(float_abi: str, plant: str | None) -> Path:
        counter[0] += 1
        out = root / f"{counter[0]:02d}"
        out.mkdir()
        elf = out / "app.elf"
        define = [f'-DPLANT="{plant}"'] if plant else []
        # A bare ELF on purpose (no platform, no board script, a softfp ABI no corner uses): not cross_build's.
        cmd = ["arm-none-eabi-gcc", "-O2", *FPU_FLAGS, f"-mfloat-abi={float_abi}", *define, "-nostdlib",
               f"-Wl,-Map={elf}.map", "-o", str(elf), str(PROGRAMS / "vfp_plant.c")]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr}"
        return elf

    return _build


FLOAT0 = [Corner(0, 0), Corner(1, 0)]


PLANTS = [  # (inline asm, how objdump shows its first instruction)
    ("vmov.f32 s0, s1", "vmov.f32 s0, s1"),
    ("vadd.f32 s0, s0, s0", "vadd.f32 s0, s0, s0"),
    ("vmrs APSR_nzcv, fpscr", "vmrs APSR_nzcv, fpscr"),
    ("vpush {s16}\\n\\tvpop {s16}", "vpush {s16}"),
]


@pytest.mark.parametrize(("float_abi", "plant", "shown"), [("softfp", *p) for p in PLANTS] + [("hard", *PLANTS[0])])
def test_vfp_instruction_in_a_float0_image_fails(build: Build, float_abi: str, plant: str, shown: str) -> None:
    elf = build(float_abi, plant)
    for corner in FLOAT0:
        with pytest.raises(QmcuError) as info:
            elfcheck.check_float_free(elf, Path(f"{elf}.map"), corner, [])
        message = str(info.value)
        assert message.startswith(f"FLOAT=0 image app.elf contains the FPU instruction '{shown}' at 0x")
        assert " in vfp_planted; " in message and "\n" not in message
    # The same image in a FLOAT=1 corner: only the inference functions must be integer-only.
    elfcheck.check_float_free(elf, Path(f"{elf}.map"), Corner(0, 1), ["integer_work"])
    with pytest.raises(QmcuError, match=f"inference symbol vfp_planted contains the FPU instruction '{shown.split()[0]}"):
        elfcheck.check_float_free(elf, Path(f"{elf}.map"), Corner(0, 1), ["vfp_planted"])


@pytest.mark.parametrize("float_abi", ["softfp", "hard"])
def test_the_same_program_without_the_instruction_passes(build: Build, float_abi: str) -> None:
    elf = build(float_abi, None)
    for corner in FLOAT0:
        checked = elfcheck.check_float_free(elf, Path(f"{elf}.map"), corner, [])
        scan = [c for c in checked["checks"] if "VFP instruction" in c]
        assert len(scan) == 1 and scan[0].startswith("no soft-float routine among ")
        count = int(scan[0].rsplit(" among ", 1)[1].split()[0])
        assert count >= 8  # the scan saw the program's code


def _readelf_sections(elf: Path) -> list[tuple[str, str, int, str]]:
    """(name, type, size, flags) of every section, from readelf -S -W (independent of size -A)."""
    out = subprocess.run(["arm-none-eabi-readelf", "-S", "-W", str(elf)], capture_output=True, text=True,
                         check=True).stdout
    rows = []
    for line in out.splitlines():
        if not line.lstrip().startswith("[") or "Nr]" in line:
            continue
        fields = line.split("]", 1)[1].split()
        if len(fields) < 7 or not fields[0].startswith("."):
            continue
        name, stype, size = fields[0], fields[1], int(fields[4], 16)
        flags = fields[6] if not fields[6].isdigit() else ""
        rows.append((name, stype, size, flags))
    return rows


def test_image_sizes_counts_data_in_ram_and_flash(build: Build) -> None:
    elf = build("softfp", None)
    sizes = elfcheck.image_sizes(elf)
    sections = _readelf_sections(elf)
    # Oracle: RAM = every allocated writable section; flash = every allocated section with file contents.
    ram = sum(size for _, _, size, flags in sections if "A" in flags and "W" in flags)
    flash = sum(size for _, stype, size, flags in sections if "A" in flags and stype != "NOBITS")
    assert sizes["data"] == 4000 and sizes["bss"] == 256
    assert sizes["ram"] == ram and ram >= 4000 + 256
    assert sizes["flash"] == flash and sizes["flash"] >= 4000 + sizes["text"]
    assert sizes["ram"] == sizes["data"] + sizes["bss"] + sizes["stack"]
