"""Shared by the convolution-kernel tests (host_cpp/test_conv_kernels_host.py, target/test_conv_kernels_qemu.py):
random layers of every op, prepared by codegen/conv_layout.py, their inputs and their reference outputs
(quant/conv_reference.py); the data header the driver program host_tests/programs/conv/conv_check.cpp includes,
and the bit-exact comparison of its output.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qmcu.codegen import conv_layout as cl
from qmcu.codegen.cpp import int_array
from qmcu.quant import conv_reference as cr

PROGRAMS = Path(__file__).resolve().parent / "programs" / "conv"
DRIVER = PROGRAMS / "conv_check.cpp"
I32_MIN, I32_MAX = -(2**31), 2**31 - 1
OP_TAGS = {"pointwise": "OpPointwise", "conv2d": "OpConv2d", "depthwise": "OpDepthwise", "maxpool": "OpMaxPool",
           "avgpool": "OpAvgPool", "add": "OpAdd"}


@dataclass
class Case:
    """One kernel call: the prepared layer, its input(s) (NHWC int8 values, batch 1) and the reference output."""

    op: str
    label: str
    prepared: object
    x: np.ndarray
    want: np.ndarray
    x2: np.ndarray | None = None
    in_place: bool = False
    in_offset: int = 0
    out_offset: int = 0
    clamp: tuple[int, int] = (-128, 127)
    extra: dict = field(default_factory=dict)


# --- random layers ----------------------------------------------------------------------------------------

def random_input(rng: random.Random, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform int8, or (one time in six) only the extremes -128/127, so the accumulators reach their bounds."""
    n = int(np.prod(shape))
    extremes = rng.random() < 1 / 6
    vals = [rng.choice((-128, 127)) if extremes else rng.randint(-128, 127) for _ in range(n)]
    return np.asarray(vals, dtype=np.int64).reshape(shape)


def random_weights(rng: random.Random, shape: tuple[int, ...]) -> np.ndarray:
    n = int(np.prod(shape))
    extremes = rng.random() < 0.12
    vals = [rng.choice((-127, 127)) if extremes else rng.randint(-127, 127) for _ in range(n)]
    return np.asarray(vals, dtype=np.int64).reshape(shape)


def random_requant(rng: random.Random, channels: int, fan_in: int, exact: bool) -> tuple[list[int], list[int]]:
    """Per-channel (multiplier, shift): a real multiplier that maps the typical accumulator (about 5400 * sqrt(fan_in))
    onto the int8 range, so most outputs are not clamped; exact=True adds shifts outside [-23, -1] (the exact path)
    and edge multipliers."""
    typical = round(math.log2(40 / (5400 * math.sqrt(fan_in))))
    mults, shifts = [], []
    for _ in range(channels):
        r = rng.random()
        if r < 0.08:
            m = rng.choice((1 << 30, 1 << 29, 3 << 28))  # exact ties in the roundings
        elif r < 0.12:
            m = rng.choice((0, 1, I32_MAX))
        else:
            m = rng.randint(1 << 30, I32_MAX)
        s = max(-23, min(-1, typical + rng.randint(-1, 1)))
        if exact and rng.random() < 0.3:
            s = rng.choice((0, 1, 3, -24, -27, -31))
            m = rng.randint(1 << 12, 1 << 20) if s > 0 else m
        mults.append(m)
        shifts.append(s)
    return mults, shifts


def random_clamp(rng: random.Random, zp: int) -> tuple[int, int]:
    r = rng.random()
    if r < 0.4:
        return zp, 127  # fused ReLU
    if r < 0.75:
        return -128, 127
    a, b = rng.randint(-128, 60), rng.randint(-60, 127)
    return min(a, b), max(a, b)


def random_bias(rng: random.Random, w_rows: np.ndarray, zp: int) -> list[int]:
    """Mostly moderate biases; one channel in twenty-five pushed to a partial-sum limit (INT32_MAX or INT32_MIN)."""
    hi_term = np.maximum(w_rows * -128, w_rows * 127).sum(axis=1)
    lo_term = np.minimum(w_rows * -128, w_rows * 127).sum(axis=1)
    row_sum = w_rows.sum(axis=1)
    out = []
    for o in range(w_rows.shape[0]):
        lo = max(int(I32_MIN - lo_term[o] + zp * row_sum[o]), I32_MIN)
        hi = min(int(I32_MAX - hi_term[o] + zp * row_sum[o]), I32_MAX)
        r = rng.random()
        if r < 0.02:
            out.append(hi)
        elif r < 0.04:
            out.append(lo)
        else:
            out.append(max(lo, min(hi, rng.randint(-20000, 20000) + zp * int(row_sum[o]))))
    return out


def _zp(rng: random.Random) -> int:
    return rng.choice((-128, 127, 0, rng.randint(-128, 127), rng.randint(-128, 127)))


def _offsets(rng: random.Random) -> dict:
    return {"in_offset": rng.randint(0, 3), "out_offset": rng.randint(0, 3)}


def pointwise_case(rng: random.Random, pixels: int, cin: int, cout: int, *, exact: bool = False,
                   in_place: bool = False, weight_bits: int = 16, clamp: tuple[int, int] | None = None) -> Case:
    w = random_weights(rng, (cout, cin))
    zp, out_zp = _zp(rng), rng.randint(-128, 127)
    qmin, qmax = clamp or random_clamp(rng, out_zp)
    mults, shifts = random_requant(rng, cout, cin, exact)
    bias = random_bias(rng, w, zp)
    x = random_input(rng, (1, 1, pixels, cin))
    want = cr.conv2d(x, w.reshape(cout, 1, 1, cin), bias, input_zero_point=zp, stride=1, padding=(0, 0, 0, 0),
                     multipliers=mults, shifts=shifts, output_zero_point=out_zp, qmin=qmin, qmax=qmax)
    prep = cl.prepare_pointwise(w, bias, pixels=pixels, input_zero_point=zp, multipliers=mults, shifts=shifts,
                                output_zero_point=out_zp, qmin=qmin, qmax=qmax, name=f"pw{pixels}x{cin}x{cout}",
                                weight_bits=weight_bits)
    return Case("pointwise", f"pointwise{weight_bits} {pixels}px {cin}->{cout}{' exact' if exact else ''}"
                f"{' in-place' if in_place else ''}", prep, x, want, in_place=in_place,
                clamp=(qmin, qmax), **({} if in_place else _offsets(rng)))


def conv2d_case(rng: random.Random, h: int, w: int, cin: int, cout: int, kernel: tuple[int, int],
                stride: tuple[int, int], padding: tuple[int, int, int, int], *, exact: bool = False) -> Case:
    kh, kw = kernel
    wt = random_weights(rng, (cout, kh, kw, cin))
    zp, out_zp = _zp(rng), rng.randint(-128, 127)
    qmin, qmax = random_clamp(rng, out_zp)
    mults, shifts = random_requant(rng, cout, kh * kw * cin, exact)
    bias = random_bias(rng, wt.reshape(cout, -1), zp)
    x = random_input(rng, (1, h, w, cin))
    kwargs = dict(input_zero_point=zp, stride=stride, padding=padding, multipliers=mults, shifts=shifts,
                  output_zero_point=out_zp, qmin=qmin, qmax=qmax)
    want = cr.conv2d(x, wt, bias, **kwargs)
    prep = cl.prepare_conv2d(wt, bias, in_hw=(h, w), name=f"conv{h}x{w}x{cin}", **kwargs)
    return Case("conv2d", f"conv2d {h}x{w}x{cin} -> {cout}, kernel {kh}x{kw}, stride {stride}, padding {padding}"
                f"{' exact' if exact else ''}", prep, x, want, clamp=(qmin, qmax), **_offsets(rng))


def depthwise_case(rng: random.Random, h: int, w: int, cin: int, m: int, kernel: tuple[int, int],
                   stride: tuple[int, int], padding: tuple[int, int, int, int], *, exact: bool = False,
                   clamp: tuple[int, int] | None = None, weight_bits: int = 16, in_place: bool = False) -> Case:
    """clamp: (qmin, qmax), or random (a fused ReLU, all of int8, or a narrower range); in_place (m = 1): the
    output overwrites the input."""
    kh, kw = kernel
    wt = random_weights(rng, (kh, kw, cin * m))
    zp, out_zp = _zp(rng), rng.randint(-128, 127)
    qmin, qmax = clamp or random_clamp(rng, out_zp)
    mults, shifts = random_requant(rng, cin * m, kh * kw, exact)
    bias = random_bias(rng, wt.reshape(kh * kw, cin * m).T, zp)
    x = random_input(rng, (1, h, w, cin))
    kwargs = dict(depth_multiplier=m, input_zero_point=zp, stride=stride, padding=padding, multipliers=mults,
                  shifts=shifts, output_zero_point=out_zp, qmin=qmin, qmax=qmax)
    want = cr.depthwise_conv2d(x, wt, bias, **kwargs)
    prep = cl.prepare_depthwise(wt, bias, in_hw=(h, w), name=f"dw{h}x{w}x{cin}", weight_bits=weight_bits, **kwargs)
    return Case("depthwise", f"depthwise{weight_bits} {h}x{w}x{cin} x{m}, kernel {kh}x{kw}, stride {stride}, padding {padding}"
                f"{' exact' if exact else ''}{' in-place' if in_place else ''}", prep, x, want, clamp=(qmin, qmax),
                in_place=in_place, **({} if in_place else _offsets(rng)))


def pool_case(rng: random.Random, kind: str, h: int, w: int, c: int, kernel: tuple[int, int], stride: tuple[int, int],
              padding: tuple[int, int, int, int] = (0, 0, 0, 0), clamp: tuple[int, int] | None = None) -> Case:
    x = random_input(rng, (1, h, w, c))
    qmin, qmax = clamp or random_clamp(rng, rng.randint(-40, 10))
    if kind == "max":
        want = cr.max_pool2d(x, kernel=kernel, stride=stride, padding=padding, qmin=qmin, qmax=qmax)
    else:
        want = cr.avg_pool2d(x, kernel=kernel, stride=stride, qmin=qmin, qmax=qmax)
    prep = cl.prepare_pool(kind, in_hw=(h, w), channels=c, kernel=kernel, stride=stride, padding=padding, qmin=qmin,
                           qmax=qmax, name=f"{kind}pool")
    return Case(f"{kind}pool", f"{kind} pool {h}x{w}x{c}, kernel {kernel}, stride {stride}, padding {padding}", prep, x,
                want, clamp=(qmin, qmax), **_offsets(rng))


def add_case(rng: random.Random, count: int, *, in_place: bool = False, scales: tuple[float, float, float] | None = None,
             clamp: tuple[int, int] | None = None) -> Case:
    s1, s2 = 2.0 ** rng.uniform(-9, -2), 2.0 ** rng.uniform(-9, -2)
    so = (s1 + s2) * rng.uniform(0.3, 2.0)
    s1, s2, so = scales or (s1, s2, so)
    zps = [rng.randint(-128, 127) for _ in range(3)]
    params = cr.add_params(s1, zps[0], s2, zps[1], so, zps[2])
    qmin, qmax = clamp or random_clamp(rng, zps[2])
    x1 = random_input(rng, (1, 1, count, 1))
    x2 = random_input(rng, (1, 1, count, 1))
    if count >= 65536:  # every input pair once
        grid = np.arange(65536)
        x1 = ((grid >> 8) - 128).reshape(1, 1, -1, 1)
        x2 = ((grid & 255) - 128).reshape(1, 1, -1, 1)
    want = cr.add(x1, x2, params, qmin, qmax)
    prep = cl.prepare_add(params, count=count, qmin=qmin, qmax=qmax)
    return Case("add", f"add {count}{' in-place' if in_place else ''} (shifts {params.input1_shift}, "
                f"{params.input2_shift}, {params.output_shift})", prep, x1, want, x2=x2, in_place=in_place,
                clamp=(qmin, qmax), **({} if in_place else _offsets(rng)))


# --- the data header and the comparison -------------------------------------------------------------------

def _case_block(i: int, case: Case) -> str:
    x = case.x.reshape(-1).tolist()
    lines = [f"namespace c{i} {{  // {case.label}", cl.render_layer("k", case.prepared),
             int_array("int8_t", "kInputData", x, per_line=32)]
    if case.x2 is not None:
        lines.append(int_array("int8_t", "kInput2Data", case.x2.reshape(-1).tolist(), per_line=32))
        lines.append("constexpr const int8_t* kInput2 = kInput2Data;")
    else:
        lines.append("constexpr const int8_t* kInput2 = nullptr;")
    lines += ["constexpr const int8_t* kInput = kInputData;",
              f"constexpr int kInPlace = {int(case.in_place)};",
              f"constexpr int kInOffset = {case.in_offset};",
              f"constexpr int kOutOffset = {case.out_offset};",
              f"static_assert(kShape::kInputBytes == {len(x)} && kShape::kOutputBytes == {case.want.size}, "
              "\"shape mismatch\");",
              f"}}  // namespace c{i}"]
    return "\n".join(lines)


def cases_header(cases: list[Case]) -> str:
    headers = sorted({c.prepared.header for c in cases})  # type: ignore[attr-defined]
    biggest = max(max(c.x.size, c.want.size) for c in cases)
    scratch = max(c.prepared.scratch_bytes for c in cases)  # type: ignore[attr-defined]
    parts = ["// Generated by host_tests/conv_cases.py for host_tests/programs/conv/conv_check.cpp.", "#pragma once",
             *[f"#include <{h}>" for h in headers],
             f"#define QMCU_CONV_MAX_BYTES {biggest}", f"#define QMCU_CONV_MAX_SCRATCH {max(scratch, 4)}"]
    parts += [_case_block(i, c) for i, c in enumerate(cases)]
    parts.append("#define QMCU_CONV_CASES(X) " + " ".join(f"X({i}, {OP_TAGS[c.op]}, c{i})" for i, c in enumerate(cases)))
    return "\n".join(parts) + "\n"


def program_source(header: Path, target: bool) -> str:
    """The program's translation unit: the generated header, then the driver (both by absolute path)."""
    return (f"#define QMCU_CONV_TARGET {int(target)}\n#include \"{header}\"\n#include \"{DRIVER}\"\n")


def check_output(text: str, cases: list[Case], variant: str, where: str) -> int:
    """Every case's output equals the reference; returns the number of bytes compared."""
    lines = text.splitlines()
    assert lines and lines[0] == f"variant {variant}", f"{where}: {text[:300]}"
    assert lines[-1] == "done", f"{where}: the program did not finish:\n{text[-2000:]}"
    overruns = [line for line in lines if line.startswith("OVERRUN")]
    assert not overruns, f"{where}: " + "; ".join(f"{line} ({cases[int(line.split()[1])].label})" for line in overruns)
    got = {int(i): h for i, h in re.findall(r"^C(\d+) ([0-9a-f]*)$", text, re.M)}
    compared = 0
    inside = 0
    for i, case in enumerate(cases):
        assert i in got, f"{where}: no output for case {i} ({case.label})"
        values = np.frombuffer(bytes.fromhex(got[i]), dtype=np.int8).astype(np.int64)
        want = case.want.reshape(-1)
        assert values.size == want.size, f"{where}: case {i} ({case.label}): {values.size} bytes, want {want.size}"
        diff = np.nonzero(values != want)[0]
        if diff.size:
            k = int(diff[0])
            pos = np.unravel_index(k, case.want.shape)
            raise AssertionError(f"{where}: case {i} ({case.label}) output {tuple(int(v) for v in pos)}: kernel "
                                 f"{values[k]} reference {want[k]} ({diff.size} of {want.size} differ)")
        compared += want.size
        inside += int(((want > case.clamp[0]) & (want < case.clamp[1])).sum())
    assert inside > compared // 4, f"{where}: only {inside} of {compared} outputs are inside the clamp range"
    return compared


# --- MLPerf Tiny's keyword-spotting DS-CNN (the bench) -----------------------------------------------------

KWS_BENCH = PROGRAMS / "kws_bench.cpp"
# MACs per layer call (padded taps counted), as the issue counts them: 2,656,768 in all.
KWS_MACS = {"kws_conv": 25 * 5 * 64 * 10 * 4, "kws_dw": 25 * 5 * 64 * 9, "kws_pw": 25 * 5 * 64 * 64,
            "kws_pool": 25 * 5 * 64, "kws_fc": 64 * 12}
KWS_CALLS = {"kws_conv": 1, "kws_dw": 4, "kws_pw": 4, "kws_pool": 1, "kws_fc": 1}
KWS_TOTAL_MACS = 2_656_768


@dataclass
class KwsNet:
    conv: cl.PreparedConv2d
    dws: list[cl.PreparedDepthwise]
    pws: list[cl.PreparedPointwise]
    pool: cl.PreparedPool
    fc: cl.PreparedPointwise
    ref: dict  # the reference's layer arguments, by layer name


def kws_network(seed: int = 1013, pw_bits: int = 16, dw_bits: int = 16) -> KwsNet:
    """Seeded random int8 weights, per-channel requantizers, ReLU after every conv (output zero point -128);
    pw_bits / dw_bits: the pointwise / depthwise layers' weight layouts (16: int16, 8: int8)."""
    rng = random.Random(seed)
    ref: dict = {}

    def requant(cout: int, fan_in: int) -> dict:
        mults, shifts = random_requant(rng, cout, fan_in, exact=False)
        return {"multipliers": mults, "shifts": shifts}

    in_zp = rng.randint(-20, 20)
    w = random_weights(rng, (64, 10, 4, 1))
    ref["conv"] = dict(weights=w, bias=random_bias(rng, w.reshape(64, -1), in_zp), input_zero_point=in_zp, stride=(2, 2),
                       padding=(4, 5, 1, 1), output_zero_point=-128, qmin=-128, qmax=127, **requant(64, 40))
    conv = cl.prepare_conv2d(in_hw=(49, 10), name="kws_conv", **ref["conv"])
    dws, pws = [], []
    for i in range(4):
        w = random_weights(rng, (3, 3, 64))
        ref[f"dw{i}"] = dict(weights=w, bias=random_bias(rng, w.reshape(9, 64).T, -128), depth_multiplier=1,
                             input_zero_point=-128, stride=(1, 1), padding=(1, 1, 1, 1), output_zero_point=-128,
                             qmin=-128, qmax=127, **requant(64, 9))
        dws.append(cl.prepare_depthwise(in_hw=(25, 5), name=f"kws_dw{i}", weight_bits=dw_bits, **ref[f"dw{i}"]))
        w = random_weights(rng, (64, 1, 1, 64))
        ref[f"pw{i}"] = dict(weights=w, bias=random_bias(rng, w.reshape(64, -1), -128), input_zero_point=-128,
                             stride=(1, 1), padding=(0, 0, 0, 0), output_zero_point=-128, qmin=-128, qmax=127,
                             **requant(64, 64))
        pws.append(cl.prepare_pointwise(pixels=125, name=f"kws_pw{i}", weight_bits=pw_bits,
                                        **{k: v for k, v in ref[f"pw{i}"].items() if k not in ("stride", "padding")}))
    pool = cl.prepare_pool("avg", in_hw=(25, 5), channels=64, kernel=(25, 5), stride=(1, 1), name="kws_pool")
    w = random_weights(rng, (12, 1, 1, 64))
    ref["fc"] = dict(weights=w, bias=random_bias(rng, w.reshape(12, -1), -128), input_zero_point=-128, stride=(1, 1),
                     padding=(0, 0, 0, 0), output_zero_point=rng.randint(-10, 10), qmin=-128, qmax=127,
                     **requant(12, 64))
    fc = cl.prepare_pointwise(pixels=1, name="kws_fc",
                              **{k: v for k, v in ref["fc"].items() if k not in ("stride", "padding")})
    return KwsNet(conv, dws, pws, pool, fc, ref)


def fnv1a(values: np.ndarray) -> int:
    h = 2166136261
    for b in values.reshape(-1).astype(np.int64).tolist():
        h = ((h ^ (b & 0xFF)) * 16777619) & 0xFFFFFFFF
    return h


def kws_reference(net: KwsNet, x: np.ndarray) -> tuple[list[int], np.ndarray]:
    """The per-layer output hashes (as kws_bench.cpp prints them) and the 12 logits of one 49x10 input."""
    r = net.ref
    t = cr.conv2d(x.reshape(1, 49, 10, 1), **r["conv"])
    hashes = [fnv1a(t)]
    for i in range(4):
        t = cr.depthwise_conv2d(t, **r[f"dw{i}"])
        hashes.append(fnv1a(t))
        t = cr.conv2d(t, **r[f"pw{i}"])
        hashes.append(fnv1a(t))
    t = cr.global_avg_pool(t)
    hashes.append(fnv1a(t))
    logits = cr.conv2d(t, **r["fc"])
    hashes.append(fnv1a(logits))
    return hashes, logits.reshape(-1)


def kws_inputs(runs: int, seed: int = 7) -> np.ndarray:
    rng = random.Random(seed)
    return np.stack([random_input(rng, (49, 10)).reshape(-1) for _ in range(runs)])


def kws_header(net: KwsNet, inputs: np.ndarray) -> str:
    layers = [("layer_conv", net.conv), *[(f"layer_dw{i}", p) for i, p in enumerate(net.dws)],
              *[(f"layer_pw{i}", p) for i, p in enumerate(net.pws)], ("layer_pool", net.pool), ("layer_fc", net.fc)]
    scratch = max(p.scratch_bytes for _, p in layers)
    rows = ",\n".join("    {" + ", ".join(str(int(v)) for v in row) + "}" for row in inputs)
    parts = ["// Generated by host_tests/conv_cases.py for host_tests/programs/conv/kws_bench.cpp.", "#pragma once",
             *[f"#include <{h}>" for h in sorted({p.header for _, p in layers})],
             f"#define KWS_RUNS {len(inputs)}", f"#define KWS_SCRATCH_BYTES {scratch}",
             f"using KwsPwParams = {net.pws[0].params_type};", f"using KwsDwParams = {net.dws[0].params_type};"]
    parts += [f"namespace {ns} {{\n{cl.render_layer('k', p)}}}  // namespace {ns}" for ns, p in layers]
    parts.append(f"constexpr int8_t kKwsInputs[{len(inputs)}][490] = {{\n{rows}}};")
    return "\n".join(parts) + "\n"


def check_kws_output(text: str, net: KwsNet, inputs: np.ndarray, where: str) -> None:
    assert text.rstrip().endswith("done"), f"{where}: the bench did not finish:\n{text[-2000:]}"
    assert "MISMATCH" not in text, f"{where}: kws_infer and the layer-by-layer trace disagree"
    for run, x in enumerate(inputs):
        hashes, logits = kws_reference(net, x)
        got = {int(k): int(h) for k, h in re.findall(rf"^H{run} (\d+) (\d+)$", text, re.M)}
        names = ["conv", *[f"{k}{i}" for i in range(4) for k in ("dw", "pw")], "pool", "fc"]
        for k, h in enumerate(hashes):
            assert got.get(k) == h, f"{where}: run {run}: layer {names[k]}'s output differs from the reference"
        m = re.search(rf"^K{run} ([0-9a-f]+)$", text, re.M)
        assert m, f"{where}: no logits for run {run}"
        assert np.frombuffer(bytes.fromhex(m.group(1)), dtype=np.int8).astype(np.int64).tolist() == logits.tolist()
