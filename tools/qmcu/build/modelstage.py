"""The model stage, run before the build graph is planned: a model file's integer model and test set.

The graph's shape depends on them (how many images the test set needs, see parts.py), so SCons cannot
compute them as one of its steps. Instead this stage keeps its own record of what they were computed
from (`.quantize-inputs.json` beside them): the content hashes of the model file, the files it read,
the data and calibration files, qmcu's quantize code and the step's settings, and of the two outputs.
Anything changed, missing or edited -> quantize again; nothing changed -> nothing runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

from qmcu import atomic
from qmcu.options import BuildOptions
from qmcu.paths import PACKAGE_DIR
from qmcu.seals import file_sha256

logger = logging.getLogger(__name__)

RECORD = ".quantize-inputs.json"
# The stages the quantize step runs (and the built-in model files import), and this file: inputs like the
# model file, so a change to any of their code quantizes again.
QUANTIZE_STAGES = ("model", "quant", "codegen")


def quantize_code() -> list[Path]:
    return [*sorted(p for stage in QUANTIZE_STAGES for p in (PACKAGE_DIR / stage).glob("*.py")),
            PACKAGE_DIR / "modelref.py", Path(__file__).resolve()]


def _settings(opts: BuildOptions) -> dict[str, Any]:
    from qmcu.modelref import declared

    assert opts.model_file is not None
    params = declared(opts.model_file).model_params
    return {"weights": opts.weights, "options": {k: getattr(opts, k) for k in params},
            "model_file": str(opts.model_file), "data": str(opts.data_file or ""),
            "calibration": str(opts.calibration or "")}


def _inputs(opts: BuildOptions) -> dict[str, str]:
    """sha256 of every input file (the user's and qmcu's), and of the settings, by name."""
    files = [opts.model_file, opts.data_file, opts.calibration, *quantize_code()]
    digests = {str(p): file_sha256(p) if p.is_file() else "missing" for p in files if p is not None}
    digests["settings"] = hashlib.sha256(json.dumps(_settings(opts), sort_keys=True).encode()).hexdigest()
    return digests


def _current(record: Path, inputs: dict[str, str], outputs: list[Path]) -> bool:
    try:
        doc = json.loads(record.read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(doc, dict) or doc.get("inputs") != inputs:
        return False
    # The files the model file read when it ran (a checkpoint, a CSV): changed or gone -> run again.
    reads = doc.get("reads", {})
    if any(not Path(r).is_file() or file_sha256(Path(r)) != d for r, d in reads.items()):
        changed = next(r for r, d in reads.items() if not Path(r).is_file() or file_sha256(Path(r)) != d)
        print(f"qmcu: {changed} changed since {record.parent.name} was quantized; quantizing again", file=sys.stderr)
        return False
    for p in outputs:
        if not p.is_file():
            return False
        if file_sha256(p) != doc.get("outputs", {}).get(p.name):
            print(f"qmcu: {p} was changed after qmcu wrote it; regenerating it", file=sys.stderr)
            return False
    return True


def ensure_quantized(opts: BuildOptions) -> tuple[Path, Path]:
    """(intmodel.json, testset.npz) of opts' model file, quantized now unless they are current."""
    from qmcu.codegen.quantize_step import quantize_file_step

    assert opts.model_file is not None
    mdir = opts.model_dir
    intmodel_path, testset = mdir / "intmodel.json", mdir / "testset.npz"
    record = mdir / RECORD
    inputs = _inputs(opts)
    if _current(record, inputs, [intmodel_path, testset]):
        return intmodel_path, testset
    record.unlink(missing_ok=True)  # written again only once both outputs are whole
    print(f"capturing, calibrating and quantizing {_shown(opts.model_file)} -> {_shown(intmodel_path)}", flush=True)
    settings = _settings(opts)
    model = quantize_file_step(opts.model_file, opts.data_file, intmodel_path, testset, weights=opts.weights,
                               options=settings["options"], calibration_file=opts.calibration)
    reads = model.provenance.get("reads", {})
    doc = {"inputs": inputs, "reads": reads if isinstance(reads, dict) else {},
           "outputs": {p.name: file_sha256(p) for p in (intmodel_path, testset)}}
    atomic.write_text(record, json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return intmodel_path, testset


def _shown(path: Path) -> str:
    """A path as SCons shows its targets: relative to the folder it runs in when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
