"""The host pipeline steps, each a function from files to files (SCons and the CLI both call these).

model file (or .pt2 + .npz) -> capture + calibrate + quantize -> intmodel.json + testset.npz -> headers
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from qmcu import __version__
from qmcu.quant.intmodel import Dense, IntModel
from qmcu.seals import file_sha256

logger = logging.getLogger(__name__)


def inputs_digest(state: dict[str, list], calibration: np.ndarray, extra: dict[str, object]) -> str:
    """sha256 of everything the integer model is computed from (float weights, calibration set, settings)."""
    h = hashlib.sha256()
    h.update(json.dumps({"state": state, "extra": extra}, sort_keys=True).encode())
    h.update(np.ascontiguousarray(calibration, dtype=np.float32).tobytes())
    return h.hexdigest()


def quantize_file_step(model_file: Path, data_file: Path | None, out: Path, testset: Path,
                       weights: str = "per_tensor", options: dict[str, Any] | None = None,
                       calibration_file: Path | None = None) -> IntModel:
    """A model file (or .pt2 + .npz): capture, calibrate, quantize; snapshot the test set the image runs.

    options: training options handed to the file's model() when it takes them (seed, epochs, ...);
    calibration_file: .npy/.csv rows that replace the file's calibration().

    weights: "per_tensor" (one weight scale per layer) or "per_channel" (one per output row). The provenance
    records the scheme and the int8 reference test accuracy of both (weights_comparison), the other scheme
    quantized in memory only.
    """
    import torch

    from qmcu import modelref
    from qmcu.errors import QmcuError
    from qmcu.model import modelfile
    from qmcu.model.capture import capture_chain
    from qmcu.quant import reference
    from qmcu.quant.diagnose import diagnose
    from qmcu.quant.quantize import WEIGHT_SCHEMES, quantize_sequential
    from qmcu.quant.reference import predictions, quantize_rows

    if weights not in WEIGHT_SCHEMES:
        raise QmcuError(f"weights={weights!r} is not a weight quantization scheme", f"use one of {', '.join(WEIGHT_SCHEMES)}")

    spec = modelfile.load(model_file, data_file, options)
    if calibration_file is not None:
        from qmcu.quant.calibrate import load_calibration_file

        spec.calibration = load_calibration_file(calibration_file, spec.x_test.shape[1])
    from qmcu.model.graph_capture import capture_graph, is_graph_model, run_graph

    shape = spec.input_shape or (spec.x_test.shape[1],)
    example = torch.from_numpy(spec.calibration[: min(len(spec.calibration), 64)].reshape(-1, *shape))
    graph = capture_graph(spec.model, example) if is_graph_model(spec.model, example) else None
    if graph is not None:
        with torch.no_grad():
            y = run_graph(graph, torch.from_numpy(spec.x_test.reshape(-1, *shape)))
            assert isinstance(y, torch.Tensor)
            model_out = spec.model(torch.from_numpy(spec.x_test.reshape(-1, *shape))) if isinstance(
                spec.model, torch.nn.Module) else spec.model.module()(torch.from_numpy(spec.x_test.reshape(-1, *shape)))
        if not torch.allclose(y, model_out, atol=1e-4, rtol=1e-4):
            raise QmcuError(f"{spec.name}: the captured graph computes {float((y - model_out).abs().max()):.3g} away from "
                            "the model on the test set", "report this model to qmcu (a capture rule is wrong)")
        logits = y.numpy()
        last = graph.nodes[-1]
        ends_in_sigmoid = last.kind == "elementwise" and getattr(last.module, "function", None) == "sigmoid"
        dropped = graph.dropped
        state = {f"{n.name}.{k}": v.tolist() for n in graph.nodes if n.module is not None
                 for k, v in n.module.state_dict().items()}
    else:
        captured = capture_chain(spec.model, example)
        with torch.no_grad():
            logits = captured.chain(torch.from_numpy(spec.x_test)).numpy()
        ends_in_sigmoid = bool(len(captured.chain) and getattr(captured.chain[-1], "function", None) == "sigmoid")
        dropped = captured.dropped
        state = {k: v.tolist() for k, v in captured.chain.state_dict().items()}
    outputs = logits.shape[1]
    if outputs == 1 and not ends_in_sigmoid:
        raise QmcuError(f"{spec.name} has one output that does not end in a Sigmoid, so it has no class threshold",
                        "end a binary classifier with nn.Sigmoid() (threshold 0.5), or give it two outputs (arg-max)")
    preds = (logits[:, 0] > 0.5).astype(np.int64) if outputs == 1 else logits.argmax(axis=1)
    classes = max(outputs, 2)
    if int(spec.y_test.max()) >= classes:
        raise QmcuError(f"test labels go up to {int(spec.y_test.max())} but {spec.name} has {outputs} output(s)",
                        "check the labels or the model's last layer")
    declared = modelref.declared(model_file)
    options_used = {k: (options or {})[k] for k in declared.model_params if k in (options or {})}
    provenance: dict[str, object] = {
        "generator": f"qmcu {__version__}", "source": spec.source, "torch": torch.__version__.split("+")[0],
        "calibration": (f"{len(spec.calibration)} rows from the model's data" if calibration_file is None
                        else f"{len(spec.calibration)} rows from {calibration_file.name}"),
        "inputs_sha256": inputs_digest(state, spec.calibration, {"source": spec.source}
                                       | ({"weights": weights} if weights != "per_tensor" else {})),
        **({"options": options_used} if options_used else {}),
        "model_file_sha256": file_sha256(model_file),
        "float_test_accuracy": float((preds == spec.y_test).mean()),
        "dropped": dropped, "max_drop": spec.max_drop, "min_accuracy": spec.min_accuracy,
    }
    if data_file is not None:
        provenance["data_file_sha256"] = file_sha256(data_file)
    provenance["reads"] = {str(r): file_sha256(r) for r in spec.reads}
    provenance["weights"] = weights
    if spec.seed_tutorial:
        provenance["seed_tutorial"] = True
    if graph is not None:
        from qmcu.quant.graph_quantize import quantize_graph

        int_model = quantize_graph(graph, spec.calibration, name=spec.name, provenance=provenance, weights=weights)
        int_model.provenance["int8_test_accuracy"] = _int8_accuracy(int_model, spec.x_test, spec.y_test)
        return _save(int_model, spec, out, testset)
    int_model = quantize_sequential(captured.chain, spec.calibration, name=spec.name, provenance=provenance,
                                    weights=weights)

    def int8_accuracy(m: IntModel) -> float:
        outputs = reference.forward(m, quantize_rows(m, spec.x_test))
        return float((predictions(m, outputs) == spec.y_test).mean())

    comparison = {weights: int8_accuracy(int_model)}
    quiet = logging.getLogger("qmcu.quant.quantize")  # its warnings were given once, for the model being built
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        for other in WEIGHT_SCHEMES:
            if other != weights:
                comparison[other] = int8_accuracy(quantize_sequential(captured.chain, spec.calibration,
                                                                      name=spec.name, provenance={}, weights=other))
    finally:
        quiet.setLevel(level)
    int_model.provenance["weights_comparison"] = {k: comparison[k] for k in WEIGHT_SCHEMES}
    # Where accuracy is lost, layer by layer, on the test set (cheap: a few integer and float passes).
    int_model.provenance["diagnosis"] = diagnose(captured.chain, int_model, spec.x_test, spec.y_test)
    from qmcu.quant.fakequant import FAKE_QUANT_FUNCTIONS, compare_with_fake_quant

    if weights == "per_tensor" and all(isinstance(lay, Dense) or lay.function in FAKE_QUANT_FUNCTIONS
                                       for lay in int_model.layers):
        # PyTorch's own fake-quant ops at our scales, layer by layer: +-1 LSB from float requantization.
        int_model.provenance["fake_quant"] = compare_with_fake_quant(captured.chain, int_model, spec.x_test)
    if spec.seed_tutorial:
        from qmcu.codegen.seed_header import seed_layers

        seed_layers(int_model)  # refuse before writing: the tutorial's layer needs the tutorial's network
    return _save(int_model, spec, out, testset)


def _int8_accuracy(model: IntModel, x: np.ndarray, y: np.ndarray) -> float:
    from qmcu.quant.reference import forward, predictions, quantize_rows

    return float((predictions(model, forward(model, quantize_rows(model, x))) == y).mean())


def _save(int_model: IntModel, spec: Any, out: Path, testset: Path) -> IntModel:
    """Write the integer model, then the test set as the image will hold it (the judge reads this snapshot,
    never the user's data again)."""
    import io

    from qmcu import atomic

    int_model.save(out)
    buf = io.BytesIO()
    extra = np.zeros((0, spec.x_test.shape[1]), np.float32) if spec.x_extra is None else spec.x_extra
    np.savez(buf, x_test=spec.x_test.astype(np.float32), y_test=spec.y_test.astype(np.int64),
             x_extra=extra.astype(np.float32))
    atomic.write_bytes(testset, buf.getvalue())
    return int_model


def freeze(model_file: Path, folder: Path, check: bool = False) -> list[Path]:
    """Quantize a model file into a committed folder (intmodel.json, testset.npz, its headers), so the
    model builds without PyTorch and its integers do not depend on how this CPU rounds float arithmetic.

    check: write nothing; raise unless the committed headers are what qmcu emits for the committed
    intmodel.json and a fresh quantization gives the same integer layers.
    """
    import tempfile

    from qmcu import atomic
    from qmcu.codegen.model_header import header_renderers
    from qmcu.errors import QmcuError
    from qmcu.quant import intmodel

    with tempfile.TemporaryDirectory() as tmp:
        fresh, testset = Path(tmp) / "intmodel.json", Path(tmp) / "testset.npz"
        model = quantize_file_step(model_file, None, fresh, testset)
        model.provenance.pop("reads", None)  # absolute paths of this machine: not for a committed file
        renderers = header_renderers(model)
        if check:
            committed = intmodel.load(folder / "intmodel.json")
            if committed.digest() != model.digest():
                raise QmcuError(f"{folder}/intmodel.json is not the quantization of {model_file.name}",
                                f"run `qmcu freeze {model_file} {folder}` and commit the result")
            for name, render in header_renderers(committed).items():
                if intmodel.stale_emission(folder / "intmodel.json", folder / name, render):
                    raise QmcuError(f"{folder}/{name} is not what qmcu emits for its intmodel.json",
                                    f"run `qmcu freeze {model_file} {folder}` and commit the result")
            return []
        model.save(folder / "intmodel.json")
        atomic.write_bytes(folder / "testset.npz", testset.read_bytes())
        written = [folder / "intmodel.json", folder / "testset.npz"]
        for name, render in renderers.items():
            atomic.write_text(folder / name, render(model))
            written.append(folder / name)
    return written
