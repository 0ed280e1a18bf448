"""The static memory plan of a graph model: every intermediate tensor and kernel scratch area at a fixed
offset in one arena, placed by liveness so buffers that are never alive at the same time share bytes.

The network's input is the caller's buffer and its output the caller's output buffer; only the tensors
in between, and each layer's scratch (alive during that layer only), live in the arena. A layer whose
kernel may write over its input (a table, an add, a depthwise convolution of multiplier 1, a pointwise
one with no more output than input channels: kernels/*.hpp) writes in place when that input dies there. Offsets are 4-byte aligned
(the DSP kernels read 32-bit words). The arena size is exact: the end of the highest placed buffer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qmcu.quant.graph_checks import tensor_sizes
from qmcu.quant.intmodel import Add, Conv, IntModel, Lut

ALIGN = 4


@dataclass(frozen=True)
class Buffer:
    name: str       # a layer's output tensor, or "<layer>.scratch"
    size: int
    first: int      # index of the layer that writes it
    last: int       # index of the last layer that reads it


@dataclass
class MemoryPlan:
    arena_bytes: int
    offsets: dict[str, int] = field(default_factory=dict)  # buffer name -> offset in the arena
    in_place: dict[str, str] = field(default_factory=dict)  # layer -> the input tensor whose bytes it reuses
    buffers: list[Buffer] = field(default_factory=list)


def _aligned(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def _overlap(a: Buffer, b: Buffer) -> bool:
    return not (a.last < b.first or b.last < a.first)


def writes_in_place(lay: object) -> bool:
    """The layer's kernel may write its output over its (first) input."""
    if isinstance(lay, Lut | Add):
        return True
    if isinstance(lay, Conv):
        return lay.depth_multiplier == 1 or (lay.pointwise and lay.out_shape[2] <= lay.in_shape[2])
    return False


def plan_memory(model: IntModel, scratch: dict[str, int] | None = None) -> MemoryPlan:
    """Place every intermediate tensor (and scratch[layer] bytes per layer) in one arena."""
    scratch = scratch or {}
    sizes = tensor_sizes(model)
    last_layer = len(model.layers) - 1
    last_read: dict[str, int] = {}
    for k, lay in enumerate(model.layers):
        for name in lay.inputs or []:
            last_read[name] = k
    plan = MemoryPlan(0)
    owner: dict[str, str] = {}  # tensor -> the buffer that holds its bytes (itself, or an in-place input's)
    buffers: dict[str, Buffer] = {}
    for k, lay in enumerate(model.layers):
        if k == last_layer:
            break  # written to the caller's output buffer
        src = (lay.inputs or [""])[0]
        if writes_in_place(lay) and src != "input" and last_read.get(src) == k and src in owner:
            plan.in_place[lay.name] = src
            holder = owner[src]
            owner[lay.name] = holder
            old = buffers[holder]
            buffers[holder] = Buffer(holder, old.size, old.first, max(old.last, last_read.get(lay.name, k)))
        else:
            owner[lay.name] = lay.name
            buffers[lay.name] = Buffer(lay.name, sizes[lay.name], k, last_read.get(lay.name, k))
        if scratch.get(lay.name):
            key = f"{lay.name}.scratch"
            buffers[key] = Buffer(key, scratch[lay.name], k, k)
    # Extend each holder's life over every tensor it holds (in-place chains).
    for tensor, holder in owner.items():
        b = buffers[holder]
        buffers[holder] = Buffer(holder, b.size, b.first, max(b.last, last_read.get(tensor, b.first)))
    placed: list[tuple[Buffer, int]] = []
    for buf in sorted(buffers.values(), key=lambda b: (-b.size, b.first, b.name)):
        offset = 0
        for other, at in sorted(placed, key=lambda p: p[1]):
            if _overlap(buf, other) and offset < at + _aligned(other.size) and at < offset + buf.size:
                offset = _aligned(at + other.size)
        placed.append((buf, offset))
    for buf, at in placed:
        plan.offsets[buf.name] = at
        plan.arena_bytes = max(plan.arena_bytes, at + buf.size)
    for tensor, holder in owner.items():
        plan.offsets[tensor] = plan.offsets[holder]
    plan.buffers = sorted(buffers.values(), key=lambda b: b.first)
    return plan


def check_plan(model: IntModel, plan: MemoryPlan) -> None:
    """No two buffers alive at the same time share a byte (the plan's own proof, run on every emission)."""
    placed = [(b, plan.offsets[b.name]) for b in plan.buffers]
    for i, (a, at) in enumerate(placed):
        assert at % ALIGN == 0 and at + a.size <= plan.arena_bytes, a
        for b, bt in placed[i + 1:]:
            if _overlap(a, b):
                assert at + a.size <= bt or bt + b.size <= at, f"{a.name} and {b.name} overlap in {model.name}'s arena"
