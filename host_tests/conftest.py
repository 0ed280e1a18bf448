"""Shared fixtures: the repo paths, a host C++ compiler helper, and the textbook integer model.

The suite is split in tiers (unit/, host_cpp/, target/, hardware/); this folder is on sys.path, so every tier
imports conftest, scons_run and the shared helper modules beside it (kernel_checks, per_channel_cases).

In CI (`CI=true`) a skip must never hide a missing tool: a skip whose reason names a missing tool, or
any skip not listed in LEGITIMATE_SKIPS below, is turned into a failure, and the session fails when
one of REQUIRED_TOOLS is not on PATH (even if every test that needs it returned early).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Generator
from pathlib import Path

import pytest

HOST_TESTS = Path(__file__).resolve().parent
if str(HOST_TESTS) not in sys.path:
    sys.path.insert(0, str(HOST_TESTS))

from qmcu.paths import FIRMWARE_DIR, REPO_ROOT, RUNTIME_INCLUDE, TEXTBOOK_HEADER  # noqa: E402
from qmcu.quant import intmodel  # noqa: E402

WARNINGS = ["-std=c++17", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-fno-exceptions", "-fno-rtti"]


def compile_host(src: Path, out: Path, defines: dict[str, int] | None = None, extra: list[str] | None = None,
                 includes: list[Path] | None = None) -> Path:
    """Compile a host C++ program against the runtime headers with the project's warning flags."""
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed (tools/setup.sh installs it)")
    cmd = ["g++", *WARNINGS, "-O2", f"-I{RUNTIME_INCLUDE}", f"-I{FIRMWARE_DIR / 'app'}",
           *[f"-I{p}" for p in includes or []], *[f"-D{k}={v}" for k, v in (defines or {}).items()],
           *(extra or []), str(src), "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"compile failed: {' '.join(cmd)}\n{proc.stderr}"
    return out


TEXTBOOK_TESTSET = TEXTBOOK_HEADER.with_name("testset.npz")


@pytest.fixture(scope="session")
def textbook_model() -> intmodel.IntModel:
    return intmodel.load(TEXTBOOK_HEADER.with_name("intmodel.json"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


# --- CI: skips for missing tools are failures ------------------------------------------------

# Everything the suite needs to test what it claims (tools/setup.sh installs all of them).
REQUIRED_TOOLS = ("g++", "gcc", "arm-none-eabi-gcc", "arm-none-eabi-g++", "arm-none-eabi-nm", "arm-none-eabi-objdump",
                  "arm-none-eabi-size", "arm-none-eabi-objcopy", "qemu-system-arm")
# A skip reason that names a tool, or says something is missing / not installed.
MISSING_TOOL = re.compile(r"arm-none-eabi|qemu|g\+\+|\bgcc\b|not installed|missing|tools/setup\.sh|no module named",
                          re.IGNORECASE)
# The only skips CI accepts: facts about the board data, not about this machine. Add a pattern here
# (with the reason it is legitimate) before adding such a skip to a test.
LEGITIMATE_SKIPS = (
    re.compile(r"^board \S+ has counter kind \S+$"),  # a counter test on a board whose counter is another kind
    re.compile(r"^board \S+ has too little RAM for "),  # the board cannot hold the test's memory layout
    re.compile(r"^no board has room for an image bigger than "),  # no board in boards/ is big enough for the case
)


def ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def skip_reason(longrepr: object) -> str:
    """The reason pytest recorded for a skip ("Skipped: " removed)."""
    text = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return str(text).removeprefix("Skipped: ").strip()


def ci_skip_failure(reason: str) -> str | None:
    """Why CI must fail this skip, or None when it is a listed, legitimate one."""
    if any(p.search(reason) for p in LEGITIMATE_SKIPS):
        return None
    if MISSING_TOOL.search(reason):
        return f"CI=true: a skip for a missing tool is a failure ({reason}); install it: bash tools/setup.sh"
    return (f"CI=true: skip reason {reason!r} is not a listed legitimate skip; fix the cause, or add the pattern "
            "to LEGITIMATE_SKIPS in host_tests/conftest.py with why it is legitimate")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport,
                                                                                             pytest.TestReport]:
    report = yield
    if ci() and report.skipped and not hasattr(report, "wasxfail"):
        why = ci_skip_failure(skip_reason(report.longrepr))
        if why is not None:
            report.outcome = "failed"
            report.longrepr = why
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, pytest.CollectReport,
                                                                         pytest.CollectReport]:
    report = yield
    if ci() and report.skipped:
        why = ci_skip_failure(skip_reason(report.longrepr))
        if why is not None:
            report.outcome = "failed"
            report.longrepr = why
    return report


def missing_tools() -> list[str]:
    return [t for t in REQUIRED_TOOLS if shutil.which(t) is None]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if ci() and missing_tools() and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    missing = missing_tools()
    if ci() and missing:
        terminalreporter.write_line(f"FAILED: CI=true and required tools are missing: {', '.join(missing)} "
                                    "(install them: bash tools/setup.sh)", red=True)
