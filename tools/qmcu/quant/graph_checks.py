"""Checks of a graph integer model (convolutions, pools, adds, dense and table layers in any DAG).

Every layer reads tensors computed before it (by name, or "input"), with the shapes it declares; every
integer is in the range the int8 runtime executes exactly; no accumulator can leave int32.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qmcu.errors import QmcuError
from qmcu.quant.qmath import INT8_MAX, INT8_MIN, INT32_MAX, INT32_MIN

if TYPE_CHECKING:
    from qmcu.quant.intmodel import IntModel, Layer


def out_hw(size: int, kernel: int, stride: int, before: int, after: int) -> int:
    """Output length of a window sliding over size + padding (PyTorch's floor rule)."""
    return (size + before + after - kernel) // stride + 1


def tensor_shapes(model: IntModel) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape: (H, W, C) for a spatial one, (F,) for a flat one; "input" included."""
    from qmcu.quant.intmodel import Add, Conv, Dense, Lut, Pool

    assert model.input_hwc is not None
    shapes: dict[str, tuple[int, ...]] = {"input": model.input_hwc}
    for lay in model.layers:
        if isinstance(lay, Conv | Pool):
            shapes[lay.name] = tuple(lay.out_shape)
        elif isinstance(lay, Add):
            shapes[lay.name] = tuple(lay.shape)
        elif isinstance(lay, Dense):
            shapes[lay.name] = (lay.out_features,)
        else:
            assert isinstance(lay, Lut) and lay.inputs
            shapes[lay.name] = shapes.get(lay.inputs[0], (0,))
    return shapes


def tensor_sizes(model: IntModel) -> dict[str, int]:
    out = {}
    for name, shape in tensor_shapes(model).items():
        n = 1
        for d in shape:
            n *= d
        out[name] = n
    return out


def layer_macs(model: IntModel) -> dict[str, int]:
    """Multiply-accumulates per layer (a convolution's padded taps counted, as MLPerf and CMSIS-NN count)."""
    from qmcu.quant.intmodel import Conv, Dense

    out = {}
    for lay in model.layers:
        if isinstance(lay, Conv):
            oh, ow, cout = lay.out_shape
            taps = lay.kernel[0] * lay.kernel[1] * (1 if lay.depth_multiplier else lay.in_shape[2])
            out[lay.name] = oh * ow * cout * taps
        elif isinstance(lay, Dense):
            out[lay.name] = lay.in_features * lay.out_features
        else:
            out[lay.name] = 0
    return out


def _bad(model: IntModel, what: str) -> QmcuError:
    return QmcuError(f"integer model {model.name}: {what}", "re-run quantization (qmcu quantize) to regenerate it")


def _ints(model: IntModel, where: str, values: list[int], lo: int, hi: int) -> None:
    for i, v in enumerate(values):
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise _bad(model, f"{where}[{i}]={v!r} is outside [{lo}, {hi}]")


def _conv(model: IntModel, lay: Layer, shape: tuple[int, ...]) -> None:
    from qmcu.quant.intmodel import Conv

    assert isinstance(lay, Conv)
    where = f"layer {lay.name}"
    h, w, c = shape if len(shape) == 3 else (0, 0, 0)
    if list(lay.in_shape) != [h, w, c]:
        raise _bad(model, f"{where} expects {lay.in_shape} but reads {list(shape)}")
    kh, kw = lay.kernel
    sh, sw = lay.stride
    t, b, left, r = lay.padding
    m = lay.depth_multiplier
    cout = c * m if m else lay.out_shape[2]
    want = [out_hw(h, kh, sh, t, b), out_hw(w, kw, sw, left, r), cout]
    if list(lay.out_shape) != want or min(want) < 1:
        raise _bad(model, f"{where} declares output {lay.out_shape}, its window gives {want}")
    taps = kh * kw * (1 if m else c)
    if len(lay.weights) != cout * taps or len(lay.bias) != cout:
        raise _bad(model, f"{where} has {len(lay.weights)} weights and {len(lay.bias)} biases for {cout} channels")
    for key in ("weight_scales", "multipliers", "shifts"):
        if len(getattr(lay, key)) != cout:
            raise _bad(model, f"{where}.{key} must list one value per output channel ({cout})")
    _ints(model, f"{where}.weights", lay.weights, -127, 127)
    _ints(model, f"{where}.bias", lay.bias, INT32_MIN, INT32_MAX)
    _ints(model, f"{where}.multipliers", lay.multipliers, 0, INT32_MAX)
    _ints(model, f"{where}.shifts", lay.shifts, -31, 30)
    _ints(model, f"{where}.zero points", [lay.input_zero_point, lay.output_zero_point, lay.act_min, lay.act_max],
          INT8_MIN, INT8_MAX)
    max_dx = max(abs(INT8_MIN - lay.input_zero_point), abs(INT8_MAX - lay.input_zero_point))
    for o in range(cout):
        # depthwise: channel o's taps are every cout-th weight
        row = lay.weights[o::cout] if m else lay.weights[o * taps:(o + 1) * taps]
        worst = abs(lay.bias[o]) + sum(abs(v) for v in row) * max_dx
        if worst > INT32_MAX:
            raise QmcuError(f"integer model {model.name}: {where} channel {o} accumulator can reach {worst}, "
                            "overflowing int32", "reduce the layer's fan-in or bias magnitude (retrain with weight decay)")


def validate_graph(model: IntModel) -> None:
    from qmcu.quant.intmodel import Add, Conv, Dense, Lut, Pool, worst_case_accumulator

    shapes: dict[str, tuple[int, ...]] = {"input": model.input_hwc or (0,)}
    sizes = tensor_sizes(model)
    hwc = model.input_hwc or (0, 0, 0)
    if hwc[0] * hwc[1] * hwc[2] != model.input_size:
        raise _bad(model, f"input_shape {model.input_shape} does not hold input_size {model.input_size} values")
    for lay in model.layers:
        where = f"layer {lay.name}"
        inputs = lay.inputs or []
        if lay.name in shapes or lay.name == "input":
            raise _bad(model, f"{where}: two tensors have that name")
        missing = [i for i in inputs if i not in shapes]
        if not inputs or missing:
            raise _bad(model, f"{where} reads {', '.join(missing) or 'nothing'}, not computed before it")
        first = shapes[inputs[0]]
        if isinstance(lay, Conv):
            _conv(model, lay, first)
        elif isinstance(lay, Pool):
            if lay.kind not in ("max", "avg") or list(lay.in_shape) != list(first):
                raise _bad(model, f"{where}: a {lay.kind} pool of {lay.in_shape} reading {list(first)}")
            h, w, c = first
            want = [out_hw(h, lay.kernel[0], lay.stride[0], lay.padding[0], lay.padding[1]),
                    out_hw(w, lay.kernel[1], lay.stride[1], lay.padding[2], lay.padding[3]), c]
            if list(lay.out_shape) != want or (lay.kind == "avg" and any(lay.padding)):
                raise _bad(model, f"{where} declares output {lay.out_shape}, its window gives {want}")
            _ints(model, f"{where}.zero_point", [lay.zero_point], INT8_MIN, INT8_MAX)
        elif isinstance(lay, Add):
            count = lay.shape[0] * lay.shape[1] * lay.shape[2]
            if len(inputs) != 2 or any(sizes[i] != count or (len(shapes[i]) == 3 and shapes[i] != tuple(lay.shape))
                                       for i in inputs):
                raise _bad(model, f"{where} adds {[list(shapes[i]) for i in inputs]} into {lay.shape}")
            _ints(model, f"{where}.zero points", [*lay.input_zero_points, lay.output_zero_point, lay.act_min,
                                                  lay.act_max], INT8_MIN, INT8_MAX)
            _ints(model, f"{where}.multipliers", [*lay.input_multipliers, lay.output_multiplier], 0, INT32_MAX)
            _ints(model, f"{where}.shifts", [*lay.input_shifts, lay.output_shift], -31, 30)
            if not 0 <= lay.left_shift <= 20:
                raise _bad(model, f"{where}.left_shift={lay.left_shift} is outside [0, 20]")
        elif isinstance(lay, Dense):
            if sizes[inputs[0]] != lay.in_features:
                raise _bad(model, f"{where} takes {lay.in_features} inputs but reads {sizes[inputs[0]]}")
            _ints(model, f"{where}.weights", lay.weights, -127, 127)
            if len(lay.weights) != lay.in_features * lay.out_features or len(lay.bias) != lay.out_features:
                raise _bad(model, f"{where} has wrong weight/bias lengths")
            if worst_case_accumulator(lay) > INT32_MAX:
                raise _bad(model, f"{where} accumulator can overflow int32")
        else:
            assert isinstance(lay, Lut)
            if len(lay.table) != 256:
                raise _bad(model, f"{where} table has {len(lay.table)} entries, not 256")
            _ints(model, f"{where}.table", lay.table, INT8_MIN, INT8_MAX)
        if hasattr(lay, "act_min") and lay.act_min > lay.act_max:  # type: ignore[union-attr]
            raise _bad(model, f"{where} clamps to an empty range")
        shapes[lay.name] = tensor_shapes_of(lay, first)
    if len(shapes[model.layers[-1].name]) != 1:
        raise _bad(model, "the last layer's output is not flat (end with a Linear)")


def tensor_shapes_of(lay: Layer, first: tuple[int, ...]) -> tuple[int, ...]:
    from qmcu.quant.intmodel import Add, Conv, Dense, Pool

    if isinstance(lay, Conv | Pool):
        return tuple(lay.out_shape)
    if isinstance(lay, Add):
        return tuple(lay.shape)
    if isinstance(lay, Dense):
        return (lay.out_features,)
    return first
