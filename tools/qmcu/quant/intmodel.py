"""The integer model: every integer and scale of a quantized network, as one JSON artifact.

Both the C++ header emitter and the Python integer reference read this file, so the firmware's
constants and the golden outputs cannot drift apart.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qmcu import atomic
from qmcu.errors import QmcuError
from qmcu.quant.qmath import INT8_MAX, INT8_MIN, INT32_MAX, INT32_MIN

logger = logging.getLogger(__name__)

FORMAT = "qmcu-intmodel/1"
# The field holding the sha256 of the rest of the file: an edited integer model is refused on load.
SEAL = "sha256"


@dataclass
class Dense:
    """y = clamp(requant(bias + sum((x - input_zero_point) * w)) + output_zero_point, act_min, act_max).

    weights are row-major [out_features][in_features] (PyTorch's nn.Linear layout). A ReLU that
    follows the layer is fused as act_min = output_zero_point.

    Per-channel weights (weights=per_channel, TFLite/CMSIS-NN's scheme): weight_scales, multipliers and
    shifts hold one value per output row (row o's weights and bias are at weight_scales[o], and its
    accumulator is requantized with (multipliers[o], shifts[o])); weight_scale, multiplier and shift then
    hold the tensor-level values (max row scale) for information only. None (per-tensor, the default):
    the keys are not written, so per-tensor files and digests are those of before.
    """

    name: str
    in_features: int
    out_features: int
    weights: list[int]
    bias: list[int]
    weight_scale: float
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int
    multiplier: int
    shift: int
    act_min: int
    act_max: int
    activation: str = "none"  # "relu" when fused
    op: str = "dense"
    weight_scales: list[float] | None = None  # per-channel only: one per output row
    multipliers: list[int] | None = None
    shifts: list[int] | None = None
    inputs: list[str] | None = None  # graph models only: the tensor it reads (a layer's name or "input")

    @property
    def per_channel(self) -> bool:
        return self.multipliers is not None

    def row_requantizers(self) -> list[tuple[int, int]]:
        """(multiplier, shift) of every output row: the per-row ones, or the layer's repeated."""
        if self.multipliers is not None and self.shifts is not None:
            return list(zip(self.multipliers, self.shifts, strict=True))
        return [(self.multiplier, self.shift)] * self.out_features


PER_ROW_FIELDS = ("weight_scales", "multipliers", "shifts")
OPTIONAL_FIELDS = (*PER_ROW_FIELDS, "inputs")


def layer_dict(lay: Layer) -> dict[str, Any]:
    """The layer as written to JSON: optional fields only when present (chain and per-tensor files unchanged)."""
    raw = asdict(lay)
    return {k: v for k, v in raw.items() if not (k in OPTIONAL_FIELDS and v is None)}


@dataclass
class Lut:
    """y = table[x + 128]: an element-wise activation tabulated on the host (e.g. sigmoid)."""

    name: str
    function: str
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int
    table: list[int]
    op: str = "lut"
    inputs: list[str] | None = None  # graph models only


@dataclass
class Conv:
    """A 2-D convolution on NHWC int8 tensors (a 1-D one has a height of 1), per-channel weights.

    Full (depth_multiplier 0): weights (Cout, KH, KW, Cin); depthwise (depth_multiplier M >= 1): weights
    (KH, KW, Cin * M), output channel c * M + m reading input channel c. padding is (top, bottom, left,
    right) in zeros of the real value (the input zero point). out[c] = clamp(requant(bias[c] + sum (x - zp)
    * w, multipliers[c], shifts[c]) + output_zero_point, act_min, act_max).
    """

    name: str
    inputs: list[str]
    in_shape: list[int]    # H, W, C
    out_shape: list[int]   # H, W, C
    kernel: list[int]      # KH, KW
    stride: list[int]
    padding: list[int]
    depth_multiplier: int
    weights: list[int]
    bias: list[int]
    weight_scales: list[float]
    multipliers: list[int]
    shifts: list[int]
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int
    act_min: int
    act_max: int
    activation: str = "none"
    op: str = "conv"

    @property
    def pointwise(self) -> bool:
        """A 1x1 full convolution, stride 1, no padding: a dense layer per pixel."""
        return (not self.depth_multiplier and list(self.kernel) == [1, 1] and list(self.stride) == [1, 1]
                and not any(self.padding))


@dataclass
class Pool:
    """Max or average pooling (TFLite's int8 rules: same scale and zero point in and out; an average
    rounds half away from zero); padding (max only) is (top, bottom, left, right), padded taps ignored."""

    name: str
    inputs: list[str]
    in_shape: list[int]
    out_shape: list[int]
    kind: str              # "max" or "avg"
    kernel: list[int]
    stride: list[int]
    padding: list[int]
    scale: float
    zero_point: int
    op: str = "pool"


@dataclass
class Add:
    """Residual add of two int8 tensors of any scales, TFLite's ADD scheme (see quant/conv_reference.py)."""

    name: str
    inputs: list[str]
    shape: list[int]       # H, W, C
    input_scales: list[float]
    input_zero_points: list[int]
    output_scale: float
    output_zero_point: int
    left_shift: int
    input_multipliers: list[int]
    input_shifts: list[int]
    output_multiplier: int
    output_shift: int
    act_min: int
    act_max: int
    activation: str = "none"
    op: str = "add"


Layer = Dense | Lut | Conv | Pool | Add
GRAPH_LAYERS = (Conv, Pool, Add)


@dataclass
class IntModel:
    name: str
    input_size: int
    input_scale: float
    input_zero_point: int
    layers: list[Layer]
    provenance: dict[str, Any] = field(default_factory=dict)
    # Graph models only: the model's own per-sample input shape ((C, H, W) or (C, L)); the target's input
    # is that tensor channels last (NHWC), see input_hwc.
    input_shape: list[int] | None = None

    @property
    def is_graph(self) -> bool:
        return self.input_shape is not None

    @property
    def input_hwc(self) -> tuple[int, int, int] | None:
        if self.input_shape is None:
            return None
        s = self.input_shape
        if len(s) == 1:  # feature vectors (a graph of Linear layers with a skip connection)
            return (1, 1, s[0])
        return (1, s[1], s[0]) if len(s) == 2 else (s[1], s[2], s[0])

    @property
    def output_size(self) -> int:
        if self.is_graph:
            from qmcu.quant.graph_checks import tensor_sizes

            return tensor_sizes(self)[self.layers[-1].name]
        dense = [lay for lay in self.layers if isinstance(lay, Dense)]
        return dense[-1].out_features if dense else self.input_size

    def dense(self, name: str) -> Dense:
        for lay in self.layers:
            if isinstance(lay, Dense) and lay.name == name:
                return lay
        raise KeyError(name)

    def lut(self, name: str) -> Lut:
        for lay in self.layers:
            if isinstance(lay, Lut) and lay.name == name:
                return lay
        raise KeyError(name)

    def to_json(self) -> str:
        doc = {"format": FORMAT, "name": self.name, "input_size": self.input_size,
               "input_scale": self.input_scale, "input_zero_point": self.input_zero_point,
               **({"input_shape": self.input_shape} if self.input_shape is not None else {}),
               "provenance": self.provenance, "layers": [layer_dict(lay) for lay in self.layers]}
        return json.dumps(doc, indent=1) + "\n"

    def digest(self) -> str:
        """Hash of the integers and scales only (not provenance): what the firmware computes with."""
        body = json.loads(self.to_json())
        body.pop("provenance")
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()

    def save(self, path: Path) -> None:
        """Write the model with its seal: the sha256 of everything else in the file (see load)."""
        validate(self)
        doc = json.loads(self.to_json())
        doc[SEAL] = _seal(doc)
        atomic.write_text(path, json.dumps(doc, indent=1) + "\n")


def _seal(doc: dict[str, Any]) -> str:
    body = {k: v for k, v in doc.items() if k != SEAL}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _int_range(model: str, where: str, values: list[int], lo: int, hi: int) -> None:
    for i, v in enumerate(values):
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise QmcuError(f"integer model {model}: {where}[{i}]={v!r} is outside [{lo}, {hi}]",
                            "re-run quantization (qmcu quantize) to regenerate it")


def worst_case_accumulator(layer: Dense) -> int:
    """Largest |accumulator| any int8 input can produce: |bias| + sum|w| * max|x - zp|."""
    max_dx = max(abs(INT8_MIN - layer.input_zero_point), abs(INT8_MAX - layer.input_zero_point))
    worst = 0
    for o in range(layer.out_features):
        row = layer.weights[o * layer.in_features:(o + 1) * layer.in_features]
        worst = max(worst, abs(layer.bias[o]) + sum(abs(w) for w in row) * max_dx)
    return worst


def _validate_per_row(model: str, where: str, lay: Dense) -> None:
    """Per-channel fields: all three or none, one value per output row, each in range."""
    given = [getattr(lay, k) is not None for k in PER_ROW_FIELDS]
    if not any(given):
        return
    if not all(given):
        raise QmcuError(f"integer model {model}: {where} has only some of {', '.join(PER_ROW_FIELDS)}",
                        "re-run quantization")
    for key in PER_ROW_FIELDS:
        values = getattr(lay, key)
        if not isinstance(values, list) or len(values) != lay.out_features:
            raise QmcuError(f"integer model {model}: {where}.{key} must list one value per output row "
                            f"({lay.out_features})", "re-run quantization")
    assert lay.multipliers is not None and lay.shifts is not None and lay.weight_scales is not None
    _int_range(model, f"{where}.multipliers", lay.multipliers, 0, INT32_MAX)
    _int_range(model, f"{where}.shifts", lay.shifts, -31, 30)
    for i, s in enumerate(lay.weight_scales):
        if isinstance(s, bool) or not isinstance(s, int | float) or not math.isfinite(s) or s <= 0:
            raise QmcuError(f"integer model {model}: {where}.weight_scales[{i}]={s!r} is not a positive finite "
                            "number", "re-run quantization")


def validate(m: IntModel) -> None:
    """Reject a model the int8 runtime cannot execute exactly (every bound checked here, once)."""
    width = m.input_size
    _int_range(m.name, "input_zero_point", [m.input_zero_point], INT8_MIN, INT8_MAX)
    if m.is_graph:
        from qmcu.quant.graph_checks import validate_graph

        validate_graph(m)
        return
    for lay in m.layers:
        where = f"layer {lay.name}"
        if isinstance(lay, Dense):
            if lay.in_features != width:
                raise QmcuError(f"integer model {m.name}: {where} takes {lay.in_features} inputs but gets {width}",
                                "re-run quantization")
            if len(lay.weights) != lay.in_features * lay.out_features or len(lay.bias) != lay.out_features:
                raise QmcuError(f"integer model {m.name}: {where} has wrong weight/bias lengths", "re-run quantization")
            _int_range(m.name, f"{where}.weights", lay.weights, -127, 127)
            _int_range(m.name, f"{where}.bias", lay.bias, INT32_MIN, INT32_MAX)
            _int_range(m.name, f"{where}.multiplier", [lay.multiplier], 0, INT32_MAX)
            _int_range(m.name, f"{where}.shift", [lay.shift], -31, 30)
            _validate_per_row(m.name, where, lay)
            _int_range(m.name, f"{where}.zero points",
                       [lay.input_zero_point, lay.output_zero_point, lay.act_min, lay.act_max], INT8_MIN, INT8_MAX)
            if lay.act_min > lay.act_max:
                raise QmcuError(f"integer model {m.name}: {where} clamps to an empty range", "re-run quantization")
            worst = worst_case_accumulator(lay)
            if worst > INT32_MAX:
                raise QmcuError(f"integer model {m.name}: {where} accumulator can reach {worst}, overflowing int32",
                                "reduce the layer's fan-in or bias magnitude (retrain with weight decay)")
            width = lay.out_features
        else:
            if len(lay.table) != 256:
                raise QmcuError(f"integer model {m.name}: {where} table has {len(lay.table)} entries, not 256",
                                "re-run quantization")
            _int_range(m.name, f"{where}.table", lay.table, INT8_MIN, INT8_MAX)


def _layer(raw: dict[str, Any]) -> Layer:
    kind = raw.get("op")
    if kind == "dense":
        return Dense(**raw)
    if kind == "lut":
        return Lut(**raw)
    for cls in GRAPH_LAYERS:
        if kind == cls.op:
            return cls(**raw)
    raise ValueError(f"unknown op {kind!r}")


def load(path: Path) -> IntModel:
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise QmcuError(f"integer model {path} does not exist", "run `qmcu quantize` (or scons) to create it") from err
    except json.JSONDecodeError as err:
        raise QmcuError(f"integer model {path} is not valid JSON ({err.msg})", "delete it and re-run quantization") from err
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise QmcuError(f"integer model {path} is not a {FORMAT} file", "delete it and re-run quantization")
    if doc.get(SEAL) != _seal(doc):
        what = "has no qmcu seal" if SEAL not in doc else "was edited after qmcu wrote it (its sha256 seal does not match)"
        raise QmcuError(f"integer model {path} {what}, so its provenance cannot be trusted",
                        "delete it and re-run quantization (scons regenerates it from the checkpoint)")
    try:
        model = IntModel(name=doc["name"], input_size=doc["input_size"], input_scale=doc["input_scale"],
                         input_zero_point=doc["input_zero_point"], provenance=doc.get("provenance", {}),
                         layers=[_layer(raw) for raw in doc["layers"]], input_shape=doc.get("input_shape"))
    except (KeyError, TypeError, ValueError) as err:
        raise QmcuError(f"integer model {path} is malformed ({err})", "delete it and re-run quantization") from err
    validate(model)
    return model


def stale_emission(json_path: Path, header_path: Path, render: Callable[[IntModel], str]) -> str | None:
    """None when a committed header equals a fresh emission of its committed integer model; else why not."""
    if not json_path.is_file():
        return f"{json_path} is missing"
    if not header_path.is_file():
        return f"{header_path} is missing"
    if header_path.read_text() != render(load(json_path)):
        return f"{header_path} differs from a fresh emission of {json_path}"
    return None
