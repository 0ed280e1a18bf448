"""The user's model, in one of two forms, loaded into one ModelSpec.

1. A Python model file (any path), the contract documented in the README:

       name = "wine"          # optional; default: the file's stem
       max_drop = 0.02        # optional gate: FAIL if target accuracy < float accuracy - max_drop
       min_accuracy = 0.9     # optional gate: FAIL below this
       def model() -> torch.nn.Module: ...
       def calibration() -> numpy.ndarray: ...                      # N x features float32
       def test() -> tuple[numpy.ndarray, numpy.ndarray]: ...       # test inputs, integer class labels
       def unlabelled() -> numpy.ndarray: ...   # optional: more inputs, judged bit-exact, not in accuracy
       seed_tutorial = True   # optional (examples/xor.py): the seed tutorial's names, API and lines on top

   model() may take keyword parameters named like qmcu's training options (seed, epochs, lr,
   max_tries): `scons model=f.py seed=7` passes them.

2. A ``torch.export`` program saved with ``torch.export.save`` (``net.pt2``) plus ``data=set.npz``
   holding ``calibration``, ``x_test`` and ``y_test``.

Everything a user can get wrong here is one line naming the file, the problem and the fix.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qmcu.errors import QmcuError
from qmcu.modelref import declared, declared_name

logger = logging.getLogger(__name__)

@dataclass
class ModelSpec:
    name: str
    model: Any                # torch.nn.Module
    calibration: np.ndarray   # float32 N x features
    x_test: np.ndarray        # float32 M x features
    y_test: np.ndarray        # int64 M
    max_drop: float | None
    min_accuracy: float | None
    source: str               # what the model came from, for the report
    reads: list[Path] = field(default_factory=list)  # the user's files the model file read (checkpoints, data)
    x_extra: np.ndarray | None = None  # unlabelled() inputs: run and judged bit-exact, not counted in accuracy
    seed_tutorial: bool = False
    # The per-sample shape of multi-dimensional inputs ((C, L) or (C, H, W)); the rows above are those
    # samples flattened in that (PyTorch, channels first) order. None: plain feature vectors.
    input_shape: tuple[int, ...] | None = None


def sample_shape(value: object) -> tuple[int, ...] | None:
    """The per-sample shape of an N x C x L or N x C x H x W array (None for N x features)."""
    shape = np.shape(value)
    return tuple(int(s) for s in shape[1:]) if len(shape) in (3, 4) else None


def _gate(value: object, what: str, path: Path) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
        raise QmcuError(f"{path.name}: {what}={value!r} is not a fraction in [0, 1]", f"give e.g. {what}=0.02")
    return float(value)


def _matrix(value: object, what: str, path: Path, rows_of: int | None = None) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except Exception as err:
        raise QmcuError(f"{path.name}: {what} is not an array ({type(value).__name__})",
                        f"return a numpy array from {what}") from err
    if arr.dtype.kind not in "fiub":
        raise QmcuError(f"{path.name}: {what} holds {arr.dtype} values, not numbers", "return a float32 array")
    arr = arr.astype(np.float32).reshape(len(arr), -1) if arr.ndim >= 1 and len(arr) else arr
    if arr.ndim != 2 or len(arr) == 0:
        raise QmcuError(f"{path.name}: {what} has shape {np.shape(value)}, not N x features with N >= 1",
                        f"return an N x features array from {what}")
    if not np.isfinite(arr).all():
        raise QmcuError(f"{path.name}: {what} holds NaN or Inf values", "clean the data")
    return arr


def _labels(value: object, n: int, path: Path) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim != 1 or len(arr) != n or arr.dtype.kind not in "iub" and not (
            arr.dtype.kind == "f" and np.all(arr == np.round(arr))):
        raise QmcuError(f"{path.name}: test labels must be {n} integer class labels (got shape {arr.shape}, {arr.dtype})",
                        "return (x_test, y_test) with y_test a 1-D array of class indices")
    if (arr < 0).any():
        raise QmcuError(f"{path.name}: test labels must be class indices >= 0", "map the classes to 0, 1, 2, ...")
    return arr.astype(np.int64)


def _load_py(path: Path, options: dict[str, Any]) -> ModelSpec:
    decl = declared(path)
    name = decl.name
    spec = importlib.util.spec_from_file_location(f"qmcu_user_model_{name.replace('-', '_')}", path)
    if spec is None or spec.loader is None:
        raise QmcuError(f"model file {path} cannot be imported", "give a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    _READS.clear()
    _watch(True)
    try:
        spec.loader.exec_module(module)
        missing = [f for f in ("model", "calibration", "test") if not callable(getattr(module, f, None))]
        if missing:
            raise QmcuError(f"model file {path} does not define {', '.join(f + '()' for f in missing)}",
                            "define model(), calibration() and test() as the README's 'Your own model' shows")
        model = module.model(**{k: options[k] for k in decl.model_params if k in options})
        calibration = module.calibration()
        test = module.test()
        extra = module.unlabelled() if callable(getattr(module, "unlabelled", None)) else None
    except QmcuError:
        raise
    except Exception as err:
        tb = err.__traceback__
        line = "?"
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == str(path):
                line = str(tb.tb_lineno)
            tb = tb.tb_next
        raise QmcuError(f"model file {path} raised {type(err).__name__} at line {line}: {err}",
                        "fix the model file (run it with python to see the traceback)") from err
    finally:
        _watch(False)
        sys.path.remove(str(path.parent))
    if not (isinstance(test, tuple) and len(test) == 2):
        raise QmcuError(f"{path.name}: test() returned {type(test).__name__}, not (x_test, y_test)",
                        "return a tuple of test inputs and integer labels")
    x_test = _matrix(test[0], "test() inputs", path)
    x_extra = None if extra is None else _matrix(extra, "unlabelled()", path)
    if x_extra is not None and x_extra.shape[1] != x_test.shape[1]:
        raise QmcuError(f"{path.name}: unlabelled() rows have {x_extra.shape[1]} features, test() rows {x_test.shape[1]}",
                        "return inputs of the model's width from both")
    shape = sample_shape(test[0])
    if sample_shape(calibration) != shape:
        raise QmcuError(f"{path.name}: calibration() samples have shape {sample_shape(calibration) or np.shape(calibration)[1:]}"
                        f", test() inputs {shape or np.shape(test[0])[1:]}", "return samples of the same shape from both")
    return ModelSpec(name=name, model=model, x_extra=x_extra, seed_tutorial=decl.seed_tutorial, input_shape=shape,
                     calibration=_matrix(calibration, "calibration()", path), x_test=x_test,
                     y_test=_labels(test[1], len(x_test), path), max_drop=_gate(getattr(module, "max_drop", None),
                                                                                "max_drop", path),
                     min_accuracy=_gate(getattr(module, "min_accuracy", None), "min_accuracy", path),
                     source=f"model file {path.name}", reads=sorted(p for p in _READS if p != path.resolve()))


# Files the model file opens while it runs: they are inputs of the build like the file itself, so
# editing a checkpoint it loads rebuilds the model. Python's own files and installed packages are not.
_READS: set[Path] = set()
_WATCHING = [False]
_SYSTEM = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix})


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _WATCHING[0] or event != "open" or not args or not isinstance(args[0], str | Path):
        return
    mode = args[1] if len(args) > 1 and isinstance(args[1], str) else "r"
    if any(c in mode for c in "wax+"):
        return
    p = Path(args[0])
    try:
        p = p.resolve()
    except OSError:
        return
    if p.is_file() and not str(p).startswith(_SYSTEM) and "site-packages" not in p.parts and p.suffix != ".pyc":
        _READS.add(p)


def _watch(on: bool) -> None:
    if not getattr(_audit, "installed", False):
        sys.addaudithook(_audit)
        _audit.installed = True  # type: ignore[attr-defined]
    _WATCHING[0] = on


def _load_pt2(path: Path, data: Path | None) -> ModelSpec:
    import torch

    if data is None:
        raise QmcuError(f"{path.name} holds a model but no data", "give data=set.npz with calibration, x_test and y_test")
    if not zipfile.is_zipfile(path):
        raise QmcuError(f"{path} is not a torch.export archive (not a zip file)", "save it with torch.export.save(ep, path)")
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    # TorchScript archives keep their code under <archive>/code/; torch.export programs do not.
    if any("/code/" in n for n in names):
        raise QmcuError(f"{path} is a TorchScript archive, not a torch.export program",
                        "export it with torch.export.export(model, (example,)) and torch.export.save, or give a model file")
    try:
        program = torch.export.load(str(path))
    except Exception as err:
        kind = "a state_dict or pickled model" if any(n.endswith("data.pkl") for n in names) else "not a torch.export program"
        raise QmcuError(f"{path} is {kind} ({type(err).__name__})",
                        "a state_dict alone needs the model's code: write a model file (README: 'Your own model'); "
                        "or save with torch.export.save") from err
    try:
        with np.load(data, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise QmcuError(f"data file {data} is not a readable .npz ({err})", "save it with numpy.savez") from err
    missing = [k for k in ("calibration", "x_test", "y_test") if k not in arrays]
    if missing:
        raise QmcuError(f"data file {data} lacks {', '.join(missing)}",
                        "write it with numpy.savez(path, calibration=..., x_test=..., y_test=...)")
    x_test = _matrix(arrays["x_test"], "x_test", data)
    return ModelSpec(name=declared_name(path), model=program, calibration=_matrix(arrays["calibration"],
                     "calibration", data), x_test=x_test, y_test=_labels(arrays["y_test"], len(x_test), data),
                     max_drop=None, min_accuracy=None, source=f"torch.export program {path.name} + {data.name}")


def load(path: Path, data: Path | None = None, options: dict[str, Any] | None = None) -> ModelSpec:
    """options: qmcu's training options (seed, epochs, ...), passed to a model() that takes them."""
    if not path.is_file():
        raise QmcuError(f"model file {path} does not exist", "give model= a path to a .py model file or a .pt2 program")
    if path.suffix == ".py":
        if data is not None:
            raise QmcuError("data= goes with a .pt2 program; a model file brings its own data", "drop data=")
        return _load_py(path, options or {})
    if path.suffix == ".pt2":
        return _load_pt2(path, data)
    raise QmcuError(f"model={path} is neither a .py model file nor a .pt2 program", "give one of those")
