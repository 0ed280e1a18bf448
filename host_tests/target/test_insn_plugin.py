"""The QEMU instruction-window plugin on a real bare-metal Cortex-M3 program under qemu-system-arm.

The test program (programs/insn_probe.c) is built here: a vector table, a reset handler that calls
qmcu_infer(n) (a C loop) and asm_probe(n) (a hand-written loop of exactly 2 + 3n instructions) for n = 1, 2, 3,
then leaves QEMU through semihosting SYS_EXIT_EXTENDED with exit code 7.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from platform_apps import PROGRAMS
from qmcu.run.insn_plugin import PluginError, build_plugin, call_window_args, plugin_argv, read_counts

EXIT_CODE = 7
QEMU_TIMEOUT_S = 60


def _require_arm_tools() -> None:
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (tools/setup.sh installs it)")


@pytest.fixture(scope="module")
def app_elf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _require_arm_tools()
    elf = tmp_path_factory.mktemp("insn_app") / "app.elf"
    # A bare program on purpose (its own vectors and exit): the plugin is checked apart from the qmcu platform.
    cmd = ["arm-none-eabi-gcc", "-mcpu=cortex-m3", "-mthumb", "-O2", "-ffreestanding", "-nostdlib",
           "-Wall", "-Wextra", "-Werror", f"-DEXIT_CODE={EXIT_CODE}", "-T", str(PROGRAMS / "insn_probe.ld"),
           str(PROGRAMS / "insn_probe.c"), "-o", str(elf)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"compile failed: {' '.join(cmd)}\n{proc.stderr}"
    return elf


@pytest.fixture(scope="module")
def plugin_so(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _require_arm_tools()
    return build_plugin(tmp_path_factory.mktemp("insn_plugin"))


def run_qemu(elf: Path, plugin_args: list[str]) -> subprocess.CompletedProcess[str]:
    cmd = ["qemu-system-arm", "-M", "mps2-an385", "-nographic", "-monitor", "none", "-serial", "null",
           "-semihosting-config", "enable=on,target=native", "-icount", "shift=0", "-kernel", str(elf), *plugin_args]
    return subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=QEMU_TIMEOUT_S,
                          check=False)


def measure(elf: Path, so: Path, out: Path, func: str) -> tuple[list[int], int]:
    entry, rets = call_window_args(elf, func)
    proc = run_qemu(elf, plugin_argv(so, entry, rets, out))
    assert proc.returncode == EXIT_CODE, f"QEMU exited with {proc.returncode}: {proc.stderr}"
    return read_counts(out)


def _symbol_value(elf: Path, name: str) -> int:
    out = subprocess.run(["arm-none-eabi-readelf", "-sW", str(elf)], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 8 and fields[7] == name:
            return int(fields[1], 16)
    raise AssertionError(f"{name} not in readelf output")


def test_call_window_args_clears_thumb_bit_and_finds_every_call(app_elf: Path) -> None:
    entry, rets = call_window_args(app_elf, "qmcu_infer")
    raw = _symbol_value(app_elf, "qmcu_infer")
    assert raw & 1 == 1, "a Thumb function symbol has bit 0 set in the ELF"
    assert entry == raw & ~1
    assert len(rets) == 3
    assert rets == sorted(rets)
    # Each call is a 4-byte Thumb-2 bl; its return address is the next instruction.
    disasm = subprocess.run(["arm-none-eabi-objdump", "-d", str(app_elf)], capture_output=True, text=True,
                            check=True).stdout
    lines = {line.split(":")[0].strip(): line for line in disasm.splitlines() if ":\t" in line}
    for ret in rets:
        call = lines[f"{ret - 4:x}"]
        assert "\tbl\t" in call and call.endswith(f"{entry:x} <qmcu_infer>"), call
        assert f"{ret:x}" in lines, "the return address is the next instruction"


def test_call_window_args_errors_are_one_line(app_elf: Path) -> None:
    with pytest.raises(PluginError, match="no_such_function") as missing:
        call_window_args(app_elf, "no_such_function")
    assert "\n" not in str(missing.value)
    with pytest.raises(PluginError, match="no direct call") as uncalled:
        call_window_args(app_elf, "reset_handler")
    assert "\n" not in str(uncalled.value)
    assert isinstance(uncalled.value, RuntimeError)


def test_asm_probe_counts_are_exact(app_elf: Path, plugin_so: Path, tmp_path: Path) -> None:
    windows, total = measure(app_elf, plugin_so, tmp_path / "probe.txt", "asm_probe")
    assert windows == [2 + 3 * n for n in (1, 2, 3)]
    assert total > sum(windows)


def test_qmcu_infer_counts_are_linear_in_n(app_elf: Path, plugin_so: Path, tmp_path: Path) -> None:
    windows, total = measure(app_elf, plugin_so, tmp_path / "infer.txt", "qmcu_infer")
    assert len(windows) == 3
    one, two, three = windows
    assert two - one == three - two > 0
    assert total > sum(windows)


def test_two_runs_give_identical_counts(app_elf: Path, plugin_so: Path, tmp_path: Path) -> None:
    first = measure(app_elf, plugin_so, tmp_path / "a.txt", "qmcu_infer")
    second = measure(app_elf, plugin_so, tmp_path / "b.txt", "qmcu_infer")
    assert first == second
    # The total does not depend on which function is windowed.
    assert measure(app_elf, plugin_so, tmp_path / "c.txt", "asm_probe")[1] == first[1]


def test_new_entry_restarts_an_open_window(app_elf: Path, plugin_so: Path, tmp_path: Path) -> None:
    entry, rets = call_window_args(app_elf, "asm_probe")
    out = tmp_path / "last.txt"
    # Only the last call site closes a window: the first two calls open windows that the next
    # entry restarts, so only the n = 3 call is recorded.
    proc = run_qemu(app_elf, plugin_argv(plugin_so, entry, rets[-1:], out))
    assert proc.returncode == EXIT_CODE, proc.stderr
    assert read_counts(out)[0] == [2 + 3 * 3]


def test_qemu_refuses_bad_plugin_arguments(app_elf: Path, plugin_so: Path, tmp_path: Path) -> None:
    proc = run_qemu(app_elf, ["-plugin", f"file={plugin_so},bogus=1,out={tmp_path / 'x.txt'}"])
    assert proc.returncode != 0
    assert "unknown argument 'bogus=1'" in proc.stderr
    proc = run_qemu(app_elf, ["-plugin", f"file={plugin_so},entry=0x40,out={tmp_path / 'x.txt'}"])
    assert proc.returncode != 0
    assert "together" in proc.stderr
    assert not (tmp_path / "x.txt").exists()


def test_build_plugin_reuses_an_up_to_date_build(plugin_so: Path) -> None:
    before = plugin_so.stat().st_mtime_ns
    assert build_plugin(plugin_so.parent) == plugin_so
    assert plugin_so.stat().st_mtime_ns == before
    assert [p.name for p in plugin_so.parent.iterdir()] == ["insn_window.so"]


def test_build_plugin_rebuilds_a_stale_build(tmp_path: Path) -> None:
    so = build_plugin(tmp_path)
    os.utime(so, ns=(0, 0))
    assert build_plugin(tmp_path) == so
    assert so.stat().st_mtime_ns > 0
    assert [p.name for p in tmp_path.iterdir()] == ["insn_window.so"]


def test_plugin_argv_escapes_commas(tmp_path: Path) -> None:
    argv = plugin_argv(tmp_path / "a,b.so", 0x50, [0x7C, 0x82], tmp_path / "out,1.txt")
    assert argv[0] == "-plugin"
    assert argv[1] == f"file={tmp_path}/a,,b.so,entry=0x50,ret=0x7c,ret=0x82,out={tmp_path}/out,,1.txt"
    with pytest.raises(PluginError):
        plugin_argv(tmp_path / "a.so", 0x50, [], tmp_path / "out.txt")


def test_read_counts_parses_and_rejects(tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text("12\n18\n24\ntotal 99\n")
    assert read_counts(good) == ([12, 18, 24], 99)
    only_total = tmp_path / "total.txt"
    only_total.write_text("total 5\n")
    assert read_counts(only_total) == ([], 5)
    for name, text in (("truncated", "12\n18\n"), ("garbage", "12\nabc\ntotal 3\n"), ("after", "total 3\n4\n"),
                       ("error", "12\nerror out of memory: some windows were lost\n")):
        bad = tmp_path / f"{name}.txt"
        bad.write_text(text)
        with pytest.raises(PluginError):
            read_counts(bad)
    with pytest.raises(PluginError, match="no output file"):
        read_counts(tmp_path / "missing.txt")
