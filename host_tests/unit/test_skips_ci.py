"""In CI (`CI=true`), a test skipped because a tool is missing fails: 175 of 450 tests used to skip and the
suite still passed on a machine without arm-none-eabi and QEMU. Legitimate, listed skips stay skips."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

HOST_TESTS = Path(__file__).resolve().parents[1]


def run_pytest(env_extra: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER")}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rfEs", "-p", "no:cacheprovider", *args],
                          cwd=HOST_TESTS.parent, env=env, capture_output=True, text=True, timeout=300, check=False)


def outcomes(stdout: str) -> dict[str, int]:
    """The counts on pytest's last summary line ("2 failed, 1 skipped in 0.1s")."""
    last = [line for line in stdout.splitlines() if " in " in line and ("passed" in line or "failed" in line
                                                                      or "skipped" in line or "error" in line)][-1]
    counts: dict[str, int] = {}
    for part in last.split(" in ")[0].split(","):
        n, _, what = part.strip().partition(" ")
        if n.isdigit():
            counts[what.rstrip("s") if what.endswith("errors") else what] = int(n)
    return counts


def test_ci_turns_missing_tool_skips_of_real_tests_into_failures(tmp_path: Path) -> None:
    # PATH without any tool (python runs by absolute path): the QEMU tests and the g++ tests must not skip.
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    files = [f"{HOST_TESTS}/target/test_digits.py::test_digits_on_qemu_m4",  # module-level skipif on qemu-system-arm
             f"{HOST_TESTS}/target/test_bench.py::test_bench_on_m4_reports_every_network",
             f"{HOST_TESTS}/host_cpp/test_runtime_host.py::test_sigmoid_lut_cpp_equals_python_for_all_256_entries"]  # g++
    ci = run_pytest({"CI": "true", "PATH": str(empty_bin)}, *files)
    counts = outcomes(ci.stdout)
    assert ci.returncode != 0, ci.stdout[-3000:]
    assert "skipped" not in counts, ci.stdout[-3000:]
    assert counts.get("failed", 0) + counts.get("error", 0) == 3, ci.stdout[-3000:]
    assert "CI=true: a skip for a missing tool is a failure (qemu-system-arm missing)" in ci.stdout
    assert "CI=true: a skip for a missing tool is a failure (g++ is not installed" in ci.stdout
    assert "required tools are missing: g++, gcc, arm-none-eabi-gcc" in ci.stdout
    # Outside CI the same run skips (a developer without the cross tools can still run the host tests).
    local = run_pytest({"PATH": str(empty_bin)}, *files)
    assert local.returncode == 0 and outcomes(local.stdout) == {"skipped": 3}, local.stdout[-3000:]


CONFTEST_PROBE = '''
import pytest

def test_tool_missing():
    pytest.skip("arm-none-eabi-g++ not installed (tools/setup.sh installs them)")

@pytest.mark.skipif(True, reason="qemu-system-arm missing")
def test_tool_missing_mark():
    pass

def test_counter_kind():
    pytest.skip("board qemu-m0 has counter kind none")

def test_unlisted():
    pytest.skip("flaky today")

@pytest.mark.xfail(reason="known", strict=True)
def test_xfail():
    assert False

def test_passes():
    pass
'''


@pytest.mark.parametrize("ci_value", ["true", "1"])
def test_ci_skip_policy_with_the_real_conftest(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                               ci_value: str) -> None:
    pytester.makeconftest((HOST_TESTS / "conftest.py").read_text())
    pytester.makepyfile(test_probe=CONFTEST_PROBE)
    monkeypatch.setenv("CI", ci_value)
    result = pytester.runpytest_inprocess("-rfEs", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2, errors=1, skipped=1, xfailed=1)  # the mark fails at set-up
    text = result.stdout.str()
    assert "a skip for a missing tool is a failure (arm-none-eabi-g++ not installed" in text
    assert "a skip for a missing tool is a failure (qemu-system-arm missing)" in text
    assert "skip reason 'flaky today' is not a listed legitimate skip" in text
    assert "board qemu-m0 has counter kind none" in text  # still a skip, with its reason
    # Outside CI every skip stays a skip.
    monkeypatch.delenv("CI")
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1, skipped=4, xfailed=1)


def test_legitimate_skip_sites_in_the_suite_are_listed() -> None:
    # Every literal skip reason in the suite that is not about a tool matches a listed pattern, so CI
    # keeps it a skip; a new one must be listed (with its reason) in conftest.LEGITIMATE_SKIPS.
    import re

    import conftest

    samples = ["board qemu-m0 has counter kind none", "board qemu-m0 has too little RAM for a free word between the "
               "data and the stack", "no board has room for an image bigger than the smallest board's flash"]
    for reason in samples:
        assert conftest.ci_skip_failure(reason) is None, reason
    for path in sorted(set(HOST_TESTS.rglob("test_*.py")) - {Path(__file__).resolve()}):
        for m in re.finditer(r'pytest\.skip\(f?"([^"]*)"', path.read_text()):
            reason = re.sub(r"\{[^}]*\}", "x", m.group(1))
            if not conftest.MISSING_TOOL.search(reason):
                assert conftest.ci_skip_failure(reason) is None, f"{path.relative_to(HOST_TESTS)}: unlisted skip {reason!r}"
