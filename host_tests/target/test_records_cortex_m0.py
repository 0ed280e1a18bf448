"""The C++ record writer cross-compiled for a Cortex-M0 (int32_t is long there)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from record_cases import FREESTANDING, HEADER_ONLY, PLATFORM_DIR, need

# ---------------------------------------------------------------------------------------------- C++ writer


def test_header_builds_for_cortex_m0(tmp_path: Path) -> None:
    """On arm-none-eabi int32_t is long, not int: the overloads must still resolve."""
    need("arm-none-eabi-g++")
    src = tmp_path / "m0.cpp"
    src.write_text(HEADER_ONLY + (
        "struct Sink { static void write(const char*, size_t) {} };\n"
        "void use(const int8_t* v) { qmcu::records::RecordWriter<Sink> w; w.begin(\"R\"); w.field(\"i\", 1);\n"
        "  w.field(\"m\", \"tok\"); w.field(\"n\", static_cast<int32_t>(-5)); w.field_list(\"in\", v, 2); w.end(); }\n"))
    cmd = ["arm-none-eabi-g++", *FREESTANDING, "-mcpu=cortex-m0", "-mthumb", "-Os", f"-I{PLATFORM_DIR}", "-c",
           str(src), "-o", str(tmp_path / "m0.o")]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
