"""The fast int8 fully connected kernels (qmcu/qdense_fast.hpp) built with the host g++: QDenseFast ==
reference.dense for random layers of every size remainder (NIn 1..17 x NOut 1..9, large layers, all 256
input zero points), in both variants (scalar, and the DSP code path on portable stand-ins);
RightShiftRequant == Requantizer::apply on edges, ties and random values.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import compile_host
from kernel_checks import (
    HOST_INPUTS,
    REQUANT_CHECK_CPP,
    _parallel,
    assert_bit_exact,
    host_layers,
    kernel_check_source,
    parse_kernel_output,
)
from qmcu.codegen.kernel_layout import prepare_dense

# Host variants: the scalar kernel under UBSan (signed overflow of a partial sum would stop it); the DSP code
# path on the portable stand-ins, without UBSan (the arithmetic it shares with the scalar path is covered
# there). Low optimisation levels keep the compile of ~160 kernel shapes short; -O2 is what the QEMU tests run.
HOST_VARIANTS = {
    "scalar": ({}, ["-Og", "-fsanitize=undefined", "-fno-sanitize-recover=all"]),
    "dsp-emulated": ({"QMCU_DENSE_EMULATE_DSP": 1}, ["-O1"]),
}


def test_host_kernels_equal_the_reference(tmp_path: Path) -> None:
    """Both variants, compiled in parallel, on every layer of host_layers() and HOST_INPUTS inputs each."""
    layers = host_layers()
    preps = [prepare_dense(layer) for layer in layers]
    src = tmp_path / "kernels.cpp"
    src.write_text(kernel_check_source(preps, HOST_INPUTS, target=False))

    def build(variant: str) -> Path:
        defines, extra = HOST_VARIANTS[variant]
        return compile_host(src, tmp_path / f"kernels-{variant}", {"QMCU_STD": 1, "QMCU_FLOAT": 0, **defines}, extra=extra)

    exes = dict(zip(HOST_VARIANTS, _parallel(list(HOST_VARIANTS), build), strict=True))
    for variant, exe in exes.items():
        proc = subprocess.run([str(exe)], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.startswith(f"variant {variant}\n") and proc.stdout.endswith("done\n")
        got = parse_kernel_output(proc.stdout, preps, HOST_INPUTS)
        checked = assert_bit_exact(got, layers, HOST_INPUTS, f"host {variant}")
        print(f"host {variant}: {len(layers)} layers, {checked} outputs bit-exact")


def test_right_shift_requant_equals_requantizer_apply_on_host(tmp_path: Path) -> None:
    src = tmp_path / "requant.cpp"
    src.write_text(REQUANT_CHECK_CPP + r"""
#include <stdio.h>
int main() {
    uint32_t checked = 0;
    const uint32_t bad = checkRequant(20000u, &checked);
    printf("%lu %lu\n", static_cast<unsigned long>(bad), static_cast<unsigned long>(checked));
    return 0;
}
""")
    exe = compile_host(src, tmp_path / "requant", {"QMCU_STD": 1, "QMCU_FLOAT": 0},
                       extra=["-fsanitize=undefined", "-fno-sanitize-recover=all"])
    bad, checked = map(int, subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split())
    assert bad == 0 and checked > 50_000_000, (bad, checked)
    print(f"RightShiftRequant: {checked} comparisons with Requantizer::apply on the host, {bad} mismatches")
