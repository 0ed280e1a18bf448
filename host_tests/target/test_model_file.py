"""Your own model in: a model file (or a torch.export program + .npz) through `scons model=... run`, on
the real cross compiler and QEMU, judged bit-exact; the README's example is the file that runs here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from qmcu.paths import REPO_ROOT
from scons_run import report, scons

EXAMPLE = REPO_ROOT / "examples" / "breast_cancer.py"


def _run(build: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return scons(build, *args, "run", timeout=600)


def test_readme_shows_the_example_file_verbatim() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index("## Your own model"):]
    block = re.search(r"```python\n(.+?)```", section, re.S)
    assert block and block.group(1) == EXAMPLE.read_text()


@pytest.mark.parametrize("board", ["qemu-m4", "qemu-m0"])
def test_model_file_runs_bit_exact(tmp_path: Path, board: str) -> None:
    proc = _run(tmp_path, f"model={EXAMPLE}", f"board={board}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "114/114 bit-exact with the Python integer reference" in proc.stdout
    assert re.search(r"int8 accuracy on the target: (\d+)/114", proc.stdout)
    doc = report(tmp_path, board, suffix="-breast-cancer")
    assert doc["passed"] and doc["bit_exact"] and doc["correct"] == doc["reference_correct"]
    assert doc["float_accuracy"] - doc["correct"] / doc["total"] <= 0.02
    assert any(c.startswith("model constants match intmodel.json") for c in doc["image_checks"])


def _write(path: Path, body: str) -> Path:
    path.write_text(body)
    return path


_SMALL = '''
import numpy as np
import torch
from torch import nn

def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)).eval()

def calibration():
    return np.random.default_rng(0).uniform(-1, 1, (64, 3)).astype(np.float32)

def test():
    x = np.random.default_rng(1).uniform(-1, 1, (40, 3)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64)
'''


def test_pt2_program_with_npz_data_and_a_data_change_rebuilds(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.ReLU6(), torch.nn.Linear(6, 3)).eval()
    rng = np.random.default_rng(0)
    cal, x = rng.uniform(-1, 1, (50, 3)).astype(np.float32), rng.uniform(-1, 1, (30, 3)).astype(np.float32)
    y = net(torch.from_numpy(x)).argmax(1).numpy()
    program = tmp_path / "net.pt2"
    torch.export.save(torch.export.export(net, (torch.from_numpy(cal[:4]),)), str(program))
    data = tmp_path / "set.npz"
    np.savez(data, calibration=cal, x_test=x, y_test=y)
    build = tmp_path / "b"
    proc = _run(build, f"model={program}", f"data={data}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "30/30 bit-exact" in proc.stdout
    np.savez(data, calibration=cal, x_test=x[:17], y_test=y[:17])
    proc = _run(build, f"model={program}", f"data={data}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "capturing, calibrating and quantizing" in proc.stdout and "17/17 bit-exact" in proc.stdout
    again = _run(build, f"model={program}", f"data={data}")
    assert "capturing" not in again.stdout and "17/17 bit-exact" in again.stdout


def test_accuracy_gate_fails_with_the_numbers(tmp_path: Path) -> None:
    f = _write(tmp_path / "small.py", _SMALL)
    proc = _run(tmp_path / "b", f"model={f}", "min_accuracy=1.0")
    assert proc.returncode != 0
    assert re.search(r"target accuracy \d+\.\d\d % is below min_accuracy=1", proc.stdout + proc.stderr)


@pytest.mark.parametrize("body,message", [
    (_SMALL.replace("def test():", "def tests():"), "does not define test()"),
    (_SMALL.replace("nn.Tanh()", "nn.Softsign()"), "unsupported op"),
    (_SMALL.replace("return x, (x[:, 0] > 0).astype(np.int64)", "return x, x[:, 0]"), "integer class labels"),
    (_SMALL.replace("torch.manual_seed(0)", "raise ValueError('no checkpoint here')"),
     "raised ValueError at line 7: no checkpoint here"),
])
def test_bad_model_files_are_one_line(tmp_path: Path, body: str, message: str) -> None:
    f = _write(tmp_path / "bad.py", body)
    proc = _run(tmp_path / "b", f"model={f}")
    assert proc.returncode != 0
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("qmcu: error:")]
    assert len(errors) == 1 and message in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "b" / "models" / "bad" / "intmodel.json").exists()


def test_saved_files_that_are_not_programs_are_named(tmp_path: Path) -> None:
    net = torch.nn.Sequential(torch.nn.Linear(3, 2))
    data = tmp_path / "set.npz"
    np.savez(data, calibration=np.zeros((4, 3), np.float32), x_test=np.zeros((2, 3), np.float32), y_test=[0, 1])
    state = tmp_path / "state.pt2"
    torch.save(net.state_dict(), state)
    script = tmp_path / "script.pt2"
    torch.jit.save(torch.jit.script(net), str(script))
    for path, message in ((state, "state_dict"), (script, "TorchScript archive")):
        proc = _run(tmp_path / "b", f"model={path}", f"data={data}")
        assert proc.returncode != 0 and message in proc.stderr, proc.stderr


def test_skip_connection_model_file_runs_and_an_unsupported_op_is_refused_with_its_line(tmp_path: Path) -> None:
    # A skip connection (refused before issue 13) takes the graph path and runs bit-exact.
    chain = "    return nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)).eval()"
    skip = _SMALL.replace(chain, '''    class Skip(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, 3)
            self.out = nn.Linear(3, 2)
        def forward(self, x):
            return self.out(self.a(x) + x)
    return Skip().eval()''')
    proc = _run(tmp_path / "b", f"model={_write(tmp_path / 'skip.py', skip)}")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "40/40 bit-exact" in proc.stdout
    # A concatenation is not supported yet: one line naming the op and the user's source line.
    cat = skip.replace("return self.out(self.a(x) + x)", "return self.out(torch.cat([self.a(x), x], 1)[:, :3])")
    proc = _run(tmp_path / "c", f"model={_write(tmp_path / 'cat.py', cat)}")
    assert proc.returncode != 0
    assert re.search(r"unsupported op \w+ at .*cat.py:\d+: return self.out\(torch.cat", proc.stderr), proc.stderr


def test_cli_run_takes_a_model_file(tmp_path: Path) -> None:
    f = _write(tmp_path / "small.py", _SMALL)
    env = {"QMCU_BUILD_DIR": str(tmp_path / "b")}
    import os

    proc = subprocess.run([sys.executable, "-m", "qmcu.cli", "run", "--model", str(f), "board=host"],
                          capture_output=True, text=True, env={**os.environ, **env}, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "40/40 bit-exact" in proc.stdout


_FROM_CHECKPOINT = '''
import numpy as np
import torch
from pathlib import Path
from torch import nn

def model():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    net.load_state_dict(torch.load(Path(__file__).with_name("weights.pt"), weights_only=True))
    return net.eval()

def calibration():
    return np.random.default_rng(0).uniform(-1, 1, (64, 3)).astype(np.float32)

def test():
    x = np.random.default_rng(1).uniform(-1, 1, (20, 3)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64)
'''


def test_a_checkpoint_the_model_file_loads_is_an_input(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    torch.save(net.state_dict(), tmp_path / "weights.pt")
    f = _write(tmp_path / "ckpt.py", _FROM_CHECKPOINT)
    build = tmp_path / "b"
    first = _run(build, f"model={f}", "board=host")
    assert first.returncode == 0, first.stdout + first.stderr
    again = _run(build, f"model={f}", "board=host")
    assert "capturing" not in again.stdout
    with torch.no_grad():
        net[0].weight.mul_(-1.0)
    torch.save(net.state_dict(), tmp_path / "weights.pt")
    changed = _run(build, f"model={f}", "board=host")
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert "weights.pt changed since ckpt was quantized" in changed.stderr
    assert "capturing, calibrating and quantizing" in changed.stdout
    doc = report(build, "host", suffix="-ckpt")
    assert doc["passed"] and doc["model_sha256"] != ""


def test_a_model_too_large_for_the_flash_is_one_line(tmp_path: Path) -> None:
    """A test set is split over images (test_one_model_path); a model whose own constants overflow the
    board is refused in one line, never a raw linker error."""
    body = _SMALL.replace("nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)", "nn.Linear(3, 900), nn.ReLU(), nn.Linear(900, 300)")
    f = _write(tmp_path / "huge.py", body)
    proc = _run(tmp_path / "b", f"model={f}", "board=qemu-m0")
    assert proc.returncode != 0
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("qmcu: error:")]
    assert len(errors) == 1, proc.stderr
    assert re.search(r"does not fit board qemu-m0: it overflows FLASH by \d+ bytes; the model's constants and the "
                     r"code are too large for it, or pick a board with more memory", errors[0])
    assert "overflowed by" not in proc.stderr  # no raw linker lines


def test_a_large_model_on_cortex_m0_is_counted_through_a_direct_call(tmp_path: Path) -> None:
    """GCC once called qmcu_infer through a register (blx r3) in this image, and the instruction-count
    plugin, which finds the direct `bl` call sites, refused it; the application now always calls it directly."""
    body = _SMALL.replace("nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)", "nn.Linear(3, 600), nn.ReLU(), nn.Linear(600, 200)")
    f = _write(tmp_path / "wide.py", body)
    proc = _run(tmp_path / "b", f"model={f}", "board=qemu-m0")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "40/40 bit-exact" in proc.stdout and "(QEMU plugin (qmcu_infer entry to return))" in proc.stdout


def test_per_channel_weights_through_scons(tmp_path: Path) -> None:
    proc = _run(tmp_path, f"model={EXAMPLE}", "board=qemu-m4", "weights=per_channel")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "(per_channel built): per-tensor" in proc.stdout and "114/114 bit-exact" in proc.stdout
    doc = report(tmp_path, "qemu-m4", suffix="-breast-cancer")
    assert doc["weights"] == "per_channel" and set(doc["weights_comparison"]) == {"per_tensor", "per_channel"}
    builtin = scons(tmp_path, "model=textbook", "weights=per_channel", "build")
    assert builtin.returncode != 0 and "weights=per_channel applies to model files" in builtin.stderr
