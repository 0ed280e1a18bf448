"""`qmcu check` / `scons model=... check`: the plan of a model on a board, without building anything.

The model is captured and quantized in memory (no file written); each layer is shown as

  kernel (dense)  a Linear on the target's dense kernel: MACs, weight bytes (int16 weights in the kernel
                  layout, kernel_layout.weight_count, plus int32 biases)
  fused           a ReLU/ReLU6/Hardtanh folded into the clamp of the dense layer before it (no cost)
  table           an elementwise activation as a 256-entry int8 table (256 bytes)
  folded          a BatchNorm1d folded into the Linear before it
  dropped         Dropout, Identity, Flatten/view, a final Softmax/LogSoftmax

with the activation RAM (the peak over the layers of input + output widths, int8), and whether the
forward path (weights, tables and activations only: not the application, vectors or runtime) fits the
board's flash and RAM. Inputs that share one quantization scale badly (a feature using less than 1/16
of the int8 range) are named, with the fix.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qmcu.boards import Board, load_board
from qmcu.codegen.kernel_layout import weight_count
from qmcu.errors import QmcuError
from qmcu.quant.intmodel import Dense, IntModel
from qmcu.quant.qmath import f32

if TYPE_CHECKING:
    from qmcu.model.capture import Captured
    from qmcu.model.modelfile import ModelSpec
    from qmcu.options import BuildOptions

logger = logging.getLogger(__name__)

WEIGHT_BYTES = 2  # the kernel layout's int16 weights
BIAS_BYTES = 4
TABLE_BYTES = 256
# A feature whose calibration range is below this share of the one input scale's range gets a warning.
BADLY_SCALED_SHARE = 1.0 / 16.0
MAX_NAMED = 8  # features named in the warning (the count is always given)


@dataclass
class PlanRow:
    name: str
    treatment: str          # kernel (dense) / fused / table / folded / dropped
    detail: str
    macs: int = 0
    weight_bytes: int = 0
    activation_bytes: int = 0  # input + output width (int8) while this layer runs


@dataclass
class Plan:
    model: str
    board: Board
    rows: list[PlanRow]
    warnings: list[str] = field(default_factory=list)
    arena_bytes: int | None = None  # a graph model: its exact activation arena (the memory plan), with scratch

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.rows)

    @property
    def flash_bytes(self) -> int:
        return sum(r.weight_bytes for r in self.rows)

    @property
    def ram_bytes(self) -> int:
        if self.arena_bytes is not None:
            return self.arena_bytes
        return max((r.activation_bytes for r in self.rows), default=0)


def dense_weight_bytes(layer: Dense) -> int:
    return WEIGHT_BYTES * weight_count(layer.in_features, layer.out_features) + BIAS_BYTES * layer.out_features


def _layer_rows(model: IntModel) -> list[PlanRow]:
    rows, width = [], model.input_size
    for layer in model.layers:
        if isinstance(layer, Dense):
            act = f"{layer.in_features}->{layer.out_features}"
            rows.append(PlanRow(layer.name, "kernel (dense)", act, layer.in_features * layer.out_features,
                                dense_weight_bytes(layer), layer.in_features + layer.out_features))
            if layer.activation != "none":
                rows.append(PlanRow(f"{layer.name}.{layer.activation}", "fused", f"{layer.activation} as the clamp "
                                    f"[{layer.act_min}, {layer.act_max}] of {layer.name}"))
            width = layer.out_features
        else:
            rows.append(PlanRow(layer.name, "table", f"{layer.function}, 256 x int8", 0, TABLE_BYTES, 2 * width))
    return rows


def _dropped_rows(captured: Captured) -> list[PlanRow]:
    rows = []
    for what in captured.dropped:
        name, _, detail = what.partition(" (")
        treatment = "folded" if "folded into" in what else "dropped"
        rows.append(PlanRow(name, treatment, detail.rstrip(")") if detail else what))
    return rows


def input_warning(calibration: np.ndarray, model: IntModel) -> str | None:
    """Name the features that use less than 1/16 of the one input scale's range (None if none do)."""
    span = 255.0 * f32(model.input_scale)
    widths = calibration.max(axis=0).astype(np.float64) - calibration.min(axis=0).astype(np.float64)
    bad = [int(i) for i in np.flatnonzero(widths < BADLY_SCALED_SHARE * span)]
    if not bad:
        return None
    named = ", ".join(f"{i} ({widths[i] / span * 100:.1f} %)" for i in bad[:MAX_NAMED])
    more = f" and {len(bad) - MAX_NAMED} more" if len(bad) > MAX_NAMED else ""
    return (f"badly scaled inputs: one int8 scale ({f32(model.input_scale):.3g} per step, range "
            f"{span:.3g}) is shared by all {len(widths)} features, and {len(bad)} use less than 1/16 of it, so they "
            f"quantize to a few levels: feature {named}{more} (share of the range used); fix: standardize the "
            "inputs ((x - mean) / std per feature, in the model or in the data)")


def make_plan(spec: ModelSpec, board: Board) -> Plan:
    """Capture and quantize `spec` in memory; the plan of its forward path on `board`."""
    import torch

    from qmcu.model.capture import capture_chain
    from qmcu.model.graph_capture import is_graph_model
    from qmcu.quant.quantize import quantize_sequential

    shape = spec.input_shape or (spec.calibration.shape[1],)
    example = torch.from_numpy(spec.calibration[: min(len(spec.calibration), 64)].reshape(-1, *shape))
    if is_graph_model(spec.model, example):
        return _graph_plan(spec, board, example)
    captured = capture_chain(spec.model, example)
    model = quantize_sequential(captured.chain, spec.calibration, name=spec.name, provenance={})
    warnings = [str(w) for w in model.provenance.get("quantizer_warnings", [])]
    scaled = input_warning(spec.calibration, model)
    return Plan(spec.name, board, _layer_rows(model) + _dropped_rows(captured),
                warnings + ([scaled] if scaled else []))


def plan_file(model_file: Path, data_file: Path | None, board_id: str) -> Plan:
    from qmcu.model import modelfile

    board = load_board(board_id)
    return make_plan(modelfile.load(model_file, data_file), board)


def _fit(what: str, need: int, region_size: int | None) -> str:
    if region_size is None:
        return f"{what} {need} B (the board sets no limit)"
    verdict = "fits" if need <= region_size else "DOES NOT FIT"
    return f"{what} {need} B of {region_size} B: {verdict}"


def plan_lines(plan: Plan) -> list[str]:
    rows = plan.rows
    width = max(len("layer"), *(len(r.name) for r in rows))
    out = [f"plan of {plan.model} on {plan.board.id} (nothing built):",
           f"  {'layer':{width}s}  {'as':18s}  {'MACs':>7s}  {'weight B':>8s}  {'act. RAM B':>10s}  detail"]
    for r in rows:
        out.append(f"  {r.name:{width}s}  {r.treatment:18s}  {r.macs:>7d}  {r.weight_bytes:>8d}  "
                   f"{r.activation_bytes:>10d}  {r.detail}")
    ram = (f"activation arena {plan.arena_bytes} B (exact, with its guard)" if plan.arena_bytes is not None
           else f"activation RAM peak {plan.ram_bytes} B")
    out.append(f"  total: {plan.macs} MACs per inference, {plan.flash_bytes} B of weights and tables, {ram}")
    flash = plan.board.flash.size if plan.board.flash else None
    ram = plan.board.ram.size if plan.board.ram else None
    out.append(f"forward path only (not the application, test vectors or runtime): "
               f"{_fit('flash', plan.flash_bytes, flash)}; {_fit('RAM', plan.ram_bytes, ram)}")
    out += [f"warning: {w}" for w in plan.warnings]
    return out


def fits(plan: Plan) -> bool:
    flash_ok = plan.board.flash is None or plan.flash_bytes <= plan.board.flash.size
    ram_ok = plan.board.ram is None or plan.ram_bytes <= plan.board.ram.size
    return flash_ok and ram_ok


def print_plan(opts: BuildOptions) -> None:
    """`scons model=f.py check`: print the plan of opts' model file on opts' board."""
    if opts.model_file is None:
        raise QmcuError(f"check takes a model file, not the built-in model={opts.model}",
                        "give model=path/to/model.py (or model=net.pt2 data=set.npz)")
    from qmcu.model import modelfile

    show(make_plan(modelfile.load(opts.model_file, opts.data_file), opts.board))


def show(plan: Plan) -> None:
    """Print the plan; a forward path that does not fit the board is an error (exit status 2)."""
    print("\n".join(plan_lines(plan)))
    if not fits(plan):
        raise QmcuError(f"{plan.model}'s forward path does not fit {plan.board.id}",
                        "shrink the model (fewer or narrower layers) or pick a board with more memory")


def _graph_plan(spec: ModelSpec, board: Board, example: object) -> Plan:
    """A graph model's plan: each kernel's MACs and prepared bytes, and the exact arena of the memory plan."""
    from qmcu.codegen import conv_layout as cl
    from qmcu.codegen.graph_header import ARENA_GUARD_BYTES, graph_plan, prepare_layer
    from qmcu.model.graph_capture import capture_graph
    from qmcu.quant.graph_checks import layer_macs, tensor_sizes
    from qmcu.quant.graph_quantize import quantize_graph
    from qmcu.quant.intmodel import Lut

    graph = capture_graph(spec.model, example)  # type: ignore[arg-type]
    model = quantize_graph(graph, spec.calibration, name=spec.name, provenance={})
    macs, sizes, memory = layer_macs(model), tensor_sizes(model), graph_plan(model)
    rows = []
    for lay in model.layers:
        prep = prepare_layer(lay)
        if isinstance(lay, Dense):
            rows.append(PlanRow(lay.name, "kernel (dense)", f"{lay.in_features}->{lay.out_features}", macs[lay.name],
                                dense_weight_bytes(lay), sizes[lay.name]))
        elif isinstance(lay, Lut):
            rows.append(PlanRow(lay.name, "table", f"{lay.function}, 256 x int8", 0, TABLE_BYTES, sizes[lay.name]))
        else:
            assert prep is not None
            kind = type(prep).__name__.removeprefix("Prepared").lower()
            weights = getattr(prep, "weights", [])
            element = 1 if getattr(prep, "weight_bits", 16) == 8 else WEIGHT_BYTES
            data = element * len(weights) + BIAS_BYTES * len(getattr(prep, "biases", [])) + (
                16 * len(prep.requant.scales) if isinstance(getattr(prep, "requant", None), cl.ChannelRequantTable)
                and prep.requant.scales else 0)
            scratch = f", scratch {prep.scratch_bytes} B" if prep.scratch_bytes else ""
            rows.append(PlanRow(lay.name, f"kernel ({kind})", f"{prep.shape_type.removeprefix('qmcu::')}{scratch}",
                                macs[lay.name], data, sizes[lay.name]))
    return Plan(spec.name, board, rows + [PlanRow(d.partition(" (")[0], "folded" if "folded into" in d else "dropped",
                                                  d.partition(" (")[2].rstrip(")") or d) for d in graph.dropped],
                [str(w) for w in model.provenance.get("quantizer_warnings", [])],
                arena_bytes=memory.arena_bytes + ARENA_GUARD_BYTES)
