"""One path for every model: the built-in names are model files or committed folders, the generic steps
know no model by name, and the seed tutorial's XOR is a thin layer (seed_tutorial = True) on the path a
user's model takes: unlabelled() rows, mode=exhaustive and the seed's header on the real build.
(The rules without a build: unit/test_one_model_path_rules.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from model_files import CIRCLE
from qmcu.paths import REPO_ROOT
from qmcu.quant import intmodel
from scons_run import report, scons


def test_a_users_binary_model_runs_its_unlabelled_rows_and_every_int8_input(tmp_path: Path) -> None:
    """The seed tutorial's features without its layer: a surface grid judged but not counted, and
    mode=exhaustive, for a 2-input model of the user's own, on the host board."""
    path = tmp_path / "circle.py"
    path.write_text(CIRCLE)
    build = tmp_path / "build"
    proc = scons(build, f"model={path}", "board=host", "run", timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "79/79 bit-exact with the Python integer reference" in proc.stdout  # 30 labelled + 49 grid rows
    assert "in=(" not in proc.stdout and "int8 XOR accuracy" not in proc.stdout  # no seed tutorial layer
    doc = report(build, "host", suffix="-circle")
    assert doc["passed"] and doc["total"] == 30 and doc["inferences"] == 79
    assert (build / "host-std0-float0-circle" / "surface.png").stat().st_size > 1000
    assert not (build / "models" / "circle" / "weights.hpp").exists()
    saved = np.load(build / "models" / "circle" / "testset.npz")
    assert saved["x_extra"].shape == (49, 2)
    proc = scons(build, f"model={path}", "board=host", "mode=exhaustive", "run", timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "65536/65536 bit-exact with the Python integer reference" in proc.stdout
    assert report(build, "host", suffix="-circle", name="report-exhaustive.json")["passed"]


def test_exhaustive_mode_of_a_wide_model_file_is_one_line(tmp_path: Path) -> None:
    proc = scons(tmp_path, f"model={REPO_ROOT / 'examples' / 'breast_cancer.py'}", "board=host", "mode=exhaustive",
                 "run", timeout=600)
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("qmcu: error:")]
    assert lines == ["qmcu: error: mode=exhaustive runs every int8 input: model breast-cancer has 30 inputs "
                     "(256^30 vectors); use mode=test; exhaustive is for models of 1 or 2 inputs"]
    assert not list(tmp_path.glob("host-*/report*.json"))


def test_trained_xor_is_examples_xor_with_the_seed_layer(tmp_path: Path) -> None:
    """model=trained: examples/xor.py through the generic path; its image also carries the seed's header."""
    proc = scons(tmp_path, "board=host", "seed=5", "run", timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert "int8 XOR accuracy: 4/4" in lines
    assert len([ln for ln in lines if re.match(r"^in=\(\d\.\d{4},\d\.\d{4}\)  q_input=\(-?\d+,-?\d+\)  "
                                                r"q_logit=-?\d+  prob=\d\.\d{4}  pred=[01]  label=[01]$", ln)]) == 4
    model = intmodel.load(tmp_path / "models" / "trained" / "intmodel.json")
    assert model.provenance["options"]["seed"] == 5 and model.provenance["seed_tutorial"] is True
    header = (tmp_path / "models" / "trained" / "weights.hpp").read_text()
    assert "namespace pytorch_quant_xor" in header and "constexpr int8_t kFc1Weights[8]" in header


# 20,000 test rows of 13 features: 280 KB of vectors, more than qemu-m0's whole 256 KB flash.
BIG = '''
import numpy as np
import torch
from torch import nn

name = "big"
ROWS = 20000


def _data(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 13)).astype(np.float32)
    return x, (x[:, :3].sum(axis=1) > 0).astype(np.int64)


def model():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(13, 8), nn.ReLU(), nn.Linear(8, 2))
    x, y = _data(2000, 1)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(200):
        opt.zero_grad()
        nn.functional.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        opt.step()
    return net


def calibration():
    return _data(500, 2)[0]


def test():
    return _data(ROWS, 3)
'''


def test_a_test_set_larger_than_the_flash_is_split_over_images_and_all_judged(tmp_path: Path) -> None:
    path = tmp_path / "big.py"
    path.write_text(BIG)
    build = tmp_path / "build"
    proc = scons(build, f"model={path}", "board=qemu-m0", "run", timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "running on qemu-m0 (std0-float0, semihosting, test): the test set in 2 images of up to 10000 rows" \
        in proc.stdout
    assert "20000/20000 bit-exact with the Python integer reference" in proc.stdout
    assert "overflow" not in proc.stderr
    doc = report(build, "qemu-m0", suffix="-big")
    assert doc["passed"] and doc["images"] == 2 and doc["inferences"] == 20000 and doc["total"] == 20000
    assert doc["correct"] == doc["reference_correct"] and len(doc["outputs"]) == 20000
    assert len(doc["counts"]) == 20000  # the plugin counted every inference of both images
    for part in ("app.elf", "app-part1.elf"):
        assert (build / "qemu-m0-std0-float0-big" / part).stat().st_size > 0
    # More rows: the next run plans three images from the new test set and judges every row.
    path.write_text(BIG.replace("ROWS = 20000", "ROWS = 32000"))
    proc = scons(build, f"model={path}", "board=qemu-m0", "run", timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "the test set in 3 images" in proc.stdout and "32000/32000 bit-exact" in proc.stdout
