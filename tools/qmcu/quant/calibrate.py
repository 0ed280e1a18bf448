"""Calibration sets: validation and loading (the ranges are observed in sequential.py)."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from qmcu.errors import QmcuError

logger = logging.getLogger(__name__)


def check_calibration_set(data: np.ndarray, width: int, source: str = "calibration set") -> np.ndarray:
    arr = np.asarray(data)
    if arr.ndim != 2 or arr.shape[1] != width:
        raise QmcuError(f"{source} has shape {arr.shape}, expected N x {width}", f"give one row of {width} values per sample")
    if arr.shape[0] == 0:
        raise QmcuError(f"{source} is empty", "give at least one sample")
    if arr.dtype.kind not in "biuf":
        raise QmcuError(f"{source} holds {arr.dtype} values, not numbers",
                        "give a numeric array, e.g. np.save(path, data.astype(np.float32))")
    if not np.isfinite(arr).all():
        raise QmcuError(f"{source} contains NaN or Inf", "remove the non-finite samples")
    with np.errstate(over="ignore"):  # values beyond float32 become Inf, refused just below
        out = arr.astype(np.float32)
    if not np.isfinite(out).all():
        row = int(np.argwhere(~np.isfinite(out))[0][0])
        raise QmcuError(f"{source} row {row} holds {arr[row].tolist()}, beyond float32's range",
                        "give calibration inputs in the range the model will see")
    return out


def load_calibration_file(path: Path, width: int) -> np.ndarray:
    """A .npy array or a .csv file (one sample per row, no header) of shape N x width."""
    try:
        if path.suffix == ".npy":
            data = np.load(path, allow_pickle=False)
        else:
            with path.open(newline="") as f:
                data = np.array([[float(v) for v in row] for row in csv.reader(f) if row], dtype=np.float32)
    except FileNotFoundError as err:
        raise QmcuError(f"calibration file {path} does not exist", "pass an existing .npy or .csv file") from err
    except ValueError as err:
        raise QmcuError(f"calibration file {path} is not numeric ({err})", "use numbers only, one sample per row") from err
    if data.ndim == 1 and data.size == 0:
        data = data.reshape(0, width)
    return check_calibration_set(data, width, f"calibration file {path}")
