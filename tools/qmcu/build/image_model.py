"""Prove that a linked image holds the integer model: read the forward path's state out of the ELF.

The forward path reads every weight, bias, requantizer and table through one global object the
generated model.hpp keeps (``qmcu_model::g_layers``), statically initialised, so its bytes are in
the image. This module walks that object field by field (pointers followed into flash) and compares
every byte with what the integer model prescribes (``kernel_layout.prepare_dense`` for the dense
layers, the tables as they are).
A hand-edited header, a stale object file or a patched ELF cannot pass: the check does not trust
the build, only the bytes the target will execute with.

The seed tutorial's API corner (STD=1 FLOAT=1, seed_tutorial.hpp) builds its requantizers and sigmoid
table at start-up from the float scales, as the seed does; there the weight and bias arrays it reads
are checked by symbol as well, and the rest is left to the run (said in the check's line).
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection
from elftools.elf.sections import SymbolTableSection

from qmcu.codegen.kernel_layout import prepare_dense
from qmcu.errors import QmcuError
from qmcu.quant.intmodel import Dense, IntModel, Lut

logger = logging.getLogger(__name__)

MODEL_STATE = "_ZN10qmcu_model8g_layersE"  # qmcu_model::g_layers
R_X86_64_RELATIVE = 8


@dataclass(frozen=True)
class Field:
    """One member of the forward-path state: inline bytes, or a pointer to bytes elsewhere."""

    what: str          # e.g. "fc1 weights"
    data: bytes        # the bytes the model prescribes
    pointer: bool      # True: the member is a pointer to `data`; False: the member is `data`
    align: int = 4


def _i32(values: list[int]) -> bytes:
    return struct.pack(f"<{len(values)}i", *values)


def _i16(values: list[int]) -> bytes:
    return struct.pack(f"<{len(values)}h", *values)


def _i8(values: list[int]) -> bytes:
    return struct.pack(f"<{len(values)}b", *values)


def dense_fields(layer: Dense) -> list[Field]:
    """qmcu::QDenseFast: {const int16_t* weights; const int32_t* folded_biases; Requantizer (5 x int32)};
    per-channel, qmcu::QDenseFastPC: {weights; folded_biases; const Requantizer* requantizers (out x 5 x int32)}."""
    prep = prepare_dense(layer)
    fields = [Field(f"{layer.name} weights", _i16(prep.weights), True),
              Field(f"{layer.name} folded biases", _i32(prep.folded_biases), True)]
    if prep.row_requantizers is not None:
        rows = [v for rq in prep.row_requantizers for v in rq]
        return [*fields, Field(f"{layer.name} per-row requantizers", _i32(rows), True)]
    return [*fields, Field(f"{layer.name} requantizer", _i32(list(prep.requantizer)), False)]


def lut_fields(layer: Lut) -> list[Field]:
    return [Field(f"{layer.name} table", _i8(layer.table), True)]


def state_fields(model: IntModel) -> list[Field]:
    """The state object's members, in declaration order, for both apps (same member order)."""
    fields: list[Field] = []
    for lay in model.layers:
        if isinstance(lay, Dense):
            fields += dense_fields(lay)
        elif isinstance(lay, Lut):
            fields += lut_fields(lay)
        else:
            from qmcu.build.graph_image import kernel_fields

            fields += kernel_fields(lay)
    return fields


class _Image:
    """Bytes at virtual addresses of an ELF's loadable sections (initial contents), with pointers."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            with path.open("rb") as f:
                elf = ELFFile(f)
                self.pointer_size = 8 if elf.elfclass == 64 else 4
                if not elf.little_endian:
                    raise QmcuError(f"{path} is a big-endian image", "qmcu targets little-endian Cortex-M and x86-64 hosts")
                self.sections = [(s.header.sh_addr, s.data()) for s in elf.iter_sections()
                                 if s.header.sh_flags & 0x2 and s.header.sh_type != "SHT_NOBITS" and s.header.sh_size]
                self.symbols: dict[str, tuple[int, int]] = {}
                self.relative: dict[int, int] = {}  # PIE hosts: pointer slots filled by the loader
                for sec in elf.iter_sections():
                    if isinstance(sec, SymbolTableSection):
                        for sym in sec.iter_symbols():
                            if sym.name and sym["st_info"]["type"] == "STT_OBJECT":
                                self.symbols.setdefault(sym.name, (sym["st_value"], sym["st_size"]))
                    elif isinstance(sec, RelocationSection) and sec.is_RELA():
                        for rel in sec.iter_relocations():
                            if rel["r_info_type"] == R_X86_64_RELATIVE:
                                self.relative[rel["r_offset"]] = rel["r_addend"]
        except (OSError, ELFError) as err:
            raise QmcuError(f"cannot read image {path} ({err})", "rebuild it (scons build)") from err

    def read(self, addr: int, size: int) -> bytes | None:
        for base, data in self.sections:
            if base <= addr and addr + size <= base + len(data):
                return data[addr - base:addr - base + size]
        return None

    def pointer(self, addr: int) -> int | None:
        if addr in self.relative:
            return self.relative[addr]
        raw = self.read(addr, self.pointer_size)
        return None if raw is None else int.from_bytes(raw, "little")

    def find(self, suffix: str) -> tuple[str, int, int] | None:
        """The object symbol whose mangled name ends with `suffix` (internal-linkage constants)."""
        hits = [(n, a, s) for n, (a, s) in self.symbols.items() if n.endswith(suffix)]
        return hits[0] if len(hits) == 1 else None


def _mismatch(image: Path, what: str, offset: int, got: bytes, want: bytes) -> QmcuError:
    return QmcuError(f"image check: {image.name} does not hold the integer model: {what} differs at byte {offset} "
                     f"(image {got[offset:offset + 4].hex()} vs intmodel.json {want[offset:offset + 4].hex()})",
                     "a generated file or object was changed after qmcu wrote it; delete the build folder and rebuild")


def _compare(image: Path, what: str, got: bytes | None, want: bytes) -> None:
    if got is None:
        raise QmcuError(f"image check: {image.name}: {what} lies outside the image's initialised sections",
                        "rebuild the image; the forward path must read its constants from flash")
    if got != want:
        first = next(i for i in range(len(want)) if got[i] != want[i])
        raise _mismatch(image, what, first, got, want)


def check_state(elf: Path, model: IntModel, symbol: str) -> int:
    """Walk the state object `symbol` field by field; returns the number of model bytes compared."""
    img = _Image(elf)
    if symbol not in img.symbols:
        raise QmcuError(f"image check: {elf.name} has no forward-path state {symbol}",
                        "rebuild the image with the current qmcu (the app must keep its layers in that object)")
    base, size = img.symbols[symbol]
    offset = compared = 0
    for field in state_fields(model):
        width = img.pointer_size if field.pointer else len(field.data)
        align = img.pointer_size if field.pointer else field.align
        offset = (offset + align - 1) // align * align
        if field.pointer and not field.data:  # a null pointer (e.g. the unused one of two requantizer tables)
            _compare(elf, field.what, img.read(base + offset, width), bytes(width))
        elif field.pointer:
            target = img.pointer(base + offset)
            _compare(elf, field.what, None if target is None else img.read(target, len(field.data)), field.data)
        else:
            _compare(elf, field.what, img.read(base + offset, width), field.data)
        offset += width
        compared += len(field.data)
    padded = (offset + img.pointer_size - 1) // img.pointer_size * img.pointer_size
    if size not in (offset, padded):
        raise QmcuError(f"image check: {symbol} in {elf.name} is {size} bytes, the integer model's layers need {offset}",
                        "the image was built for another model; delete the build folder and rebuild")
    return compared


def check_seed_arrays(elf: Path, model: IntModel) -> int:
    """The seed's API corner: the row-major weights and biases it reads, found by symbol."""
    img = _Image(elf)
    compared = 0
    from qmcu.codegen.seed_header import seed_layers

    fc1, fc2, _ = seed_layers(model)
    for name, layer in (("Fc1", fc1), ("Fc2", fc2)):
        for member, data in ((f"k{name}Weights", _i8(layer.weights)), (f"k{name}Biases", _i32(layer.bias))):
            hit = img.find(f"L{len(member)}{member}E")
            if hit is None:
                raise QmcuError(f"image check: {elf.name} has no {member} array", "rebuild the image")
            _, addr, size = hit
            if size != len(data):
                raise QmcuError(f"image check: {member} in {elf.name} is {size} bytes, the model needs {len(data)}",
                                "the image was built for another model; delete the build folder and rebuild")
            _compare(elf, member, img.read(addr, size), data)
            compared += size
    return compared


def check_image_holds_model(elf: Path, model: IntModel, seed_api: bool = False) -> str:
    """Raise QmcuError unless the image holds `model`; returns the line the build prints.

    seed_api: the image runs the seed tutorial's API (STD=1 FLOAT=1): its arrays are checked too."""
    n = check_state(elf, model, MODEL_STATE)
    if seed_api:
        seed = check_seed_arrays(elf, model)
        return (f"model constants match intmodel.json ({n} bytes; and the seed API's {seed} bytes of weights and "
                "biases, whose requantizers and sigmoid table it builds at start-up, judged by the run)")
    return f"model constants match intmodel.json ({n} bytes)"
