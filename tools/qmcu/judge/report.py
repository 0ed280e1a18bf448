"""Reports of one run: report.json, the per-layer CSV, the decision-surface PNG, the console summary."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from qmcu import atomic
from qmcu.judge.verdict import Verdict
from qmcu.quant.intmodel import Dense, IntModel, Lut

logger = logging.getLogger(__name__)


def layer_rows(model: IntModel, verdict: Verdict) -> list[dict[str, Any]]:
    """name, weight_bytes (weights + biases, or the table), activation_bytes (output), instructions, and macs
    (multiply-accumulates, padded taps counted)."""
    from qmcu.quant.graph_checks import layer_macs, tensor_sizes

    sizes = tensor_sizes(model) if model.is_graph else {}
    macs = layer_macs(model)
    rows = []
    for layer in model.layers:
        if isinstance(layer, Dense):
            weight_bytes = len(layer.weights) + 4 * len(layer.bias)
            act = layer.out_features
        elif isinstance(layer, Lut):
            weight_bytes, act = len(layer.table), sizes.get(layer.name, model.output_size)
        else:
            weight_bytes = len(getattr(layer, "weights", [])) + 4 * len(getattr(layer, "bias", []))
            act = sizes[layer.name]
        rows.append({"name": layer.name, "weight_bytes": weight_bytes, "activation_bytes": act,
                     "instructions": verdict.layer_counts.get(layer.name), "macs": macs[layer.name]})
    return rows


def write_layers_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["name", "weight_bytes", "activation_bytes", "instructions", "macs"],
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic.write_text(path, buf.getvalue())


def surface_side(model_inputs: int, model_outputs: int, unlabelled: int) -> int | None:
    """The side of the square input grid the unlabelled rows form (a binary 2-input model's decision
    surface, as examples/xor.py's 41x41), else None."""
    side = math.isqrt(unlabelled)
    return side if model_inputs == 2 and model_outputs == 1 and side >= 2 and side * side == unlabelled else None


def write_surface_png(path: Path, verdict: Verdict, title: str, labelled: int, side: int) -> None:
    """P(class 1) over the side x side grid of unlabelled rows, from the int8 outputs the target printed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.array(verdict.outputs[labelled: labelled + side * side], dtype=np.float64)
    prob = ((grid[:, 0] + 128.0) / 256.0).reshape(side, side)  # [x0][x1]
    fig, ax = plt.subplots(figsize=(5.2, 4.4), dpi=100)
    im = ax.imshow(prob.T, origin="lower", extent=(0, 1, 0, 1), vmin=0, vmax=1, cmap="coolwarm")
    ax.contour(np.linspace(0, 1, side), np.linspace(0, 1, side), prob.T, levels=[0.5], colors="k")
    ax.set_xlabel("x0")
    ax.set_ylabel("x1")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, label="P(class 1), int8 output / 256")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    atomic.write_bytes(path, buf.getvalue())


def write_confusion_png(path: Path, labels: np.ndarray, predictions: list[int], title: str) -> None:
    """Confusion matrix of the target's predictions (rows: true class, columns: predicted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = int(max(labels.max(), max(predictions)) + 1)
    cm = np.zeros((n, n), dtype=np.int64)
    for t, p in zip(labels, predictions, strict=True):
        cm[int(t), int(p)] += 1
    fig, ax = plt.subplots(figsize=(5.6, 4.8), dpi=100)
    im = ax.imshow(cm, cmap="Blues")
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xlabel("predicted (int8 arg-max on the target)")
    ax.set_ylabel("true digit")
    ax.set_title(f"{title}\n{int(np.trace(cm))}/{int(cm.sum())} correct", fontsize=9)
    fig.colorbar(im, ax=ax)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    atomic.write_bytes(path, buf.getvalue())


def write_json(path: Path, report: dict[str, Any]) -> None:
    atomic.write_text(path, json.dumps(report, indent=1) + "\n")


def diagnosis_lines(diagnosis: dict[str, Any]) -> list[str]:
    """The per-layer table of diagnose.diagnose: where accuracy is lost, and the worst layer."""
    rows = diagnosis["layers"]
    width = max([len("layer"), *(len(r["layer"]) + len(r["from"]) + 3 for r in rows)])
    out = [f"where accuracy is lost ({diagnosis['set']}; each layer fed the integer reference's input):",
           f"  {'layer':{width}s}  {'SQNR dB':>8s}  {'max err LSB':>11s}  acc. with this layer in float"]
    for r in rows:
        sqnr = "exact" if r["sqnr_db"] is None else f"{r['sqnr_db']:.1f}"
        label = f"{r['layer']} ({r['from']})"
        out.append(f"  {label:{width}s}  {sqnr:>8s}  {r['max_err_lsb']:>11.2f}  {r['float_accuracy'] * 100:.2f} %")
    out.append(f"  all layers in float: {diagnosis['all_float_accuracy'] * 100:.2f} %, all int8: "
               f"{diagnosis['int8_accuracy'] * 100:.2f} %")
    worst = diagnosis.get("worst")
    if worst is None:
        out.append("worst layer: none (every layer equals its float original on this set)")
    else:
        row = next(r for r in rows if r["layer"] == worst)
        out.append(f"worst layer: {worst} (lowest SQNR, {row['sqnr_db']:.1f} dB; accuracy with it in float "
                   f"{row['float_accuracy'] * 100:.2f} % vs {diagnosis['int8_accuracy'] * 100:.2f} % all int8)")
    return out


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The human summary printed after a run; every figure comes from the report (measured)."""
    unit = report["unit"]
    out = []
    if report.get("float_accuracy") is not None and report["total"]:  # labelled rows (not mode=exhaustive)
        t = report["total"]
        if report.get("dropped"):
            out.append(f"captured with torch.export; not in the int8 graph: {'; '.join(report['dropped'])}")
        out.append(f"float accuracy (PyTorch, host): {report['float_accuracy'] * 100:.2f} %")
        cmp = report.get("weights_comparison")
        if cmp:
            out.append(f"int8 reference accuracy by weight scheme ({report.get('weights')} built): "
                       + ", ".join(f"{k.replace('_', '-')} {v * 100:.2f} %" for k, v in cmp.items()))
        out.append(f"int8 accuracy (Python integer reference): {report['reference_correct']}/{t} "
                   f"({report['reference_correct'] / t * 100:.2f} %)")
        out.append(f"int8 accuracy on the target: {report['correct']}/{t} ({report['correct'] / t * 100:.2f} %)")
        fq = report.get("fake_quant")
        if fq:
            hist = ", ".join(f"{k}: {v}" for k, v in fq["histogram"].items())
            out.append(f"PyTorch fake-quant vs int8, per layer, {fq['elements']} elements: difference histogram {{{hist}}} "
                       f"({'within' if fq['within_1_lsb'] else 'NOT within'} +-1 LSB)")
        if report.get("diagnosis"):
            out += diagnosis_lines(report["diagnosis"])
    exact = "bit-exact" if report["bit_exact"] else "NOT bit-exact"
    n = report["inferences"]
    out.append(f"{n - report['mismatches']}/{n} {exact} with the Python integer reference")
    stats = report.get("per_inference")
    if stats:
        out.append(f"{unit} per inference: min {stats['min']} median {stats['median']:.12g} max {stats['max']}"
                   f" ({report['counter_source']})")
        if report.get("counter_minus_plugin") is not None:
            p = report["plugin_per_inference"]
            out.append(f"  cross-check: QEMU plugin counts min {p['min']} median {p['median']:.12g} max {p['max']} inside "
                       f"qmcu_infer, exactly {report['counter_minus_plugin']} fewer for every one of "
                       f"{report['inferences']} calls")
        layers = ", ".join(f"{r['name']} {r['instructions']}" for r in report["layers"] if r["instructions"] is not None)
        if layers:
            out.append(f"{unit} per layer: {layers}")
    elif unit == "none":
        out.append("no instruction or cycle counter on this board")
    sizes = report.get("sizes")
    if sizes:
        images = report.get("images", 1)
        which = f"image (the first of {images}, each with its slice of the test set)" if images > 1 else "image"
        out.append(f"{which}: flash {sizes['image_flash']} B, RAM {sizes['image_ram']} B (stack used "
                   f"{report['stack_bytes']} B); forward path: flash {sizes['forward_flash']} B, "
                   f"RAM {sizes['forward_ram']} B")
    if report.get("arena_bytes") is not None:
        ok = report.get("status") == 0
        out.append(f"activation arena: {report['arena_bytes']} B (exact, scratch included); the guard after it "
                   f"{'held' if ok else 'was not checked to the end'}")
    for check in report.get("image_checks", []):
        out.append(f"image check: {check}")
    for problem in report["problems"]:
        out.append(f"FAIL: {problem}")
    out.append("PASS" if report["passed"] else "FAIL")
    return out
