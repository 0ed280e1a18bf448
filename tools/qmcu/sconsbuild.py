"""The SCons build graph: model pipeline -> generated headers -> firmware -> checks -> run.

SConstruct only calls setup(). Targets are aliases:
  build (default)  train/quantize/emit if needed, compile, check the image
  run              build, then run on the board, judge and write the reports
  size             print the image's flash/RAM figures
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from SCons.Script import AlwaysBuild, Default, Environment, Exit, Help, Value  # type: ignore[import-untyped]

from . import elfcheck, linker, toolchain
from .errors import QmcuError
from .options import DEFAULTS, HELP, BuildOptions, parse_options
from .paths import FIRMWARE_DIR, REPO_ROOT, RUNTIME_INCLUDE

logger = logging.getLogger(__name__)
PKG = Path(__file__).resolve().parent


def _action(fn: Callable[..., Any], message: str) -> Any:
    """Wrap a pipeline step as an SCons action: QmcuError -> one clear line and a failed target."""

    def run(target: list[Any], source: list[Any], env: Any) -> int:
        try:
            fn([Path(str(t)) for t in target], [Path(str(s)) for s in source])
        except QmcuError as err:
            print(f"qmcu: error: {err}", file=sys.stderr)
            return 1
        return 0

    from SCons.Action import Action  # type: ignore[import-untyped]

    return Action(run, message)


def _model_nodes(env: Any, opts: BuildOptions) -> tuple[Any, Any]:
    """(intmodel.json, weights.hpp) nodes: committed for the textbook model, built for the trained one."""
    from . import pipeline

    mdir = opts.model_dir
    if opts.model == "textbook":
        return env.File(str(mdir / "intmodel.json")), env.File(str(mdir / "weights.hpp"))

    train_cfg = {"seed": opts.seed, "epochs": opts.epochs, "lr": opts.lr, "max_tries": opts.max_tries}
    ckpt = env.Command(str(mdir / "float.pt"), [Value(json.dumps(train_cfg, sort_keys=True)),
                                                str(PKG / "train.py"), str(PKG / "xor_model.py")],
                       _action(lambda t, s: pipeline.train_step(t[0], opts.seed, opts.epochs, opts.lr, opts.max_tries),
                               "training the float32 XOR model -> $TARGET"))
    cal_sources = [str(opts.calibration)] if opts.calibration else []
    quant_code = [str(PKG / f) for f in ("calibrate.py", "quantize.py", "qmath.py", "intmodel.py", "pipeline.py")]
    intmodel = env.Command(str(mdir / "intmodel.json"), ckpt + cal_sources + quant_code,
                           _action(lambda t, s: pipeline.quantize_step("trained", s[0], opts.calibration, t[0]),
                                   "calibrating and quantizing -> $TARGET"))
    header = env.Command(str(mdir / "weights.hpp"), intmodel + [str(PKG / "emit_header.py"), str(PKG / "cpp.py")],
                         _action(lambda t, s: _emit_header(s[0], t[0]), "emitting $TARGET"))
    return intmodel[0], header[0]


def _emit_header(intmodel: Path, out: Path) -> None:
    from . import intmodel as im
    from .emit_header import emit_xor_header

    emit_xor_header(im.load(intmodel), out)


def _emit_vectors(intmodel: Path, out: Path, mode: str) -> None:
    from . import intmodel as im
    from .vectors import emit_vectors

    emit_vectors(im.load(intmodel), mode, out)


def _firmware_env(opts: BuildOptions, bdir: Path) -> tuple[Any, list[Path]]:
    corner, board = opts.corner, opts.board
    if board.is_target:
        toolchain.require_tool("arm-none-eabi-g++")
        flags = toolchain.target_flags(board, corner, f"-{opts.opt}")
        cxx = "arm-none-eabi-g++"
    else:
        toolchain.require_tool("g++")
        flags = toolchain.host_flags(corner, f"-{opts.opt}")
        cxx = "g++"
    env = Environment(ENV={"PATH": os.environ.get("PATH", "")}, CXX=cxx, LINK=cxx, CC=cxx,
                      CXXFLAGS=list(flags.cxxflags), LINKFLAGS=list(flags.linkflags),
                      CPPDEFINES=dict(flags.defines), LIBS=list(flags.libs),
                      CPPPATH=[str(bdir), str(opts.model_dir), str(RUNTIME_INCLUDE), str(FIRMWARE_DIR / "platform"),
                               str(FIRMWARE_DIR / "app")])
    if board.is_target:
        env.Append(CPPDEFINES={"QMCU_COUNTER_UNIT": board.counter_unit})
    return env, toolchain.platform_sources(board, corner)


def setup(arguments: dict[str, str]) -> None:
    Help(_help_text())
    try:
        opts = parse_options(dict(arguments))
        _graph(opts)
    except QmcuError as err:
        print(f"qmcu: error: {err}", file=sys.stderr)
        Exit(2)


def _graph(opts: BuildOptions) -> None:
    bdir = opts.build_dir
    base = Environment(ENV={"PATH": os.environ.get("PATH", "")})
    intmodel, header = _model_nodes(base, opts)
    vectors = base.Command(str(bdir / opts.artifact_stem / "vectors.hpp"),
                           [intmodel, Value(opts.mode), str(PKG / "vectors.py"), str(PKG / "cpp.py")],
                           _action(lambda t, s: _emit_vectors(s[0], t[0], opts.mode), "emitting $TARGET"))

    env, platform_sources = _firmware_env(opts, bdir / opts.artifact_stem)
    objdir = bdir / opts.artifact_stem / "obj"
    sources = [FIRMWARE_DIR / "app" / "xor_app.cpp", *platform_sources]
    objects = [env.Object(str(objdir / f"{src.parent.name}_{src.stem}.o"), str(src)) for src in sources]
    for obj in objects:
        env.Depends(obj, [header, vectors])
    program_path = bdir / (opts.artifact_stem + (".elf" if opts.board.is_target else ""))
    if opts.board.is_target:
        ld = base.Command(str(bdir / "link.ld"), [Value(json.dumps(_board_key(opts), sort_keys=True)),
                                                   str(PKG / "linker.py")],
                          _action(lambda t, s: linker.write_linker_script(opts.board, t[0]), "writing $TARGET"))
        env.Append(LINKFLAGS=[f"-T{bdir / 'link.ld'}", f"-Wl,-Map={program_path}.map"])
        program = env.Program(str(program_path), objects)
        env.Depends(program, ld)
        env.SideEffect(str(program_path) + ".map", program)
        checked = base.Command(str(program_path) + ".checked", program,
                               _action(lambda t, s: _check_image(opts, s[0], t[0]),
                                       "checking $SOURCE: fits the board, float-free/libc-free as the corner demands"))
    else:
        program = env.Program(str(program_path), objects)
        checked = program
    base.Alias("build", checked)
    base.Alias("size", base.Command(str(program_path) + ".size", checked,
                                    _action(lambda t, s: _print_size(opts, Path(str(program[0]))), "size")))
    AlwaysBuild("size")
    run = base.Alias("run", [checked, intmodel], _action(lambda t, s: _run(opts, Path(str(program[0])), intmodel),
                                                         "running on $board"))
    AlwaysBuild(run)
    Default("build")


def _board_key(opts: BuildOptions) -> dict[str, Any]:
    b = opts.board
    return {"flash": [b.flash.origin, b.flash.size] if b.flash else None,
            "ram": [b.ram.origin, b.ram.size] if b.ram else None}


def _check_image(opts: BuildOptions, elf: Path, stamp: Path) -> None:
    elfcheck.check_fits(opts.board, elf)
    checked = elfcheck.check_float_free(elf, Path(f"{elf}.map"), opts.corner, ["qmcu_infer"])
    from . import atomic

    atomic.write_text(stamp, json.dumps(checked, indent=1, default=str) + "\n")


def _print_size(opts: BuildOptions, program: Path) -> None:
    from .runflow import forward_sizes

    if not opts.board.is_target:
        print("size: the host program has no flash/RAM budget")
        return
    sizes = {**elfcheck.image_sizes(program, "arm-none-eabi-"), **forward_sizes(program, "arm-none-eabi-")}
    print(f"{program.name}: flash {sizes['flash']} B, RAM {sizes['ram']} B; forward path flash "
          f"{sizes['forward_flash']} B, RAM {sizes['forward_ram']} B")


def _run(opts: BuildOptions, program: Path, intmodel_node: Any) -> None:
    from . import intmodel as im
    from . import report, runflow

    model = im.load(Path(str(intmodel_node)))
    doc = runflow.run(opts, program, model)
    for line in doc.get("console", []):
        print(line)
    for line in report.summary_lines(doc):
        print(line)
    print(f"report: {program.parent / opts.report_name}")
    if not doc["passed"]:
        raise QmcuError(f"run on {opts.board.id} failed", "see the FAIL lines above")


def _help_text() -> str:
    lines = ["qmcu: scons [build|run|size] key=value ...", "", "options:"]
    lines += [f"  {k}={DEFAULTS[k] or '<none>'}  {HELP[k]}" for k in DEFAULTS]
    return "\n".join(lines) + f"\n\nrepo: {REPO_ROOT}\n"
