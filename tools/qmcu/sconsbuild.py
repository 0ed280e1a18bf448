"""The SCons build graph: model pipeline -> generated headers -> firmware -> checks -> run.

SConstruct only calls setup(). Targets are aliases:
  build (default)  train/quantize/emit if needed, compile, check the image
  run              build, then run on the board, judge and write the reports
  size             print the image's flash/RAM figures
  flash            real boards: program the image (dry_run=1 prints the command)
  matrix           every runnable board x corner x mode, in parallel with -j, then the matrix reports

Every Python step is one top-level function in STEPS, called through one action whose signature
is the step name plus its JSON arguments: SCons rebuilds a target exactly when those (or the
target's sources) change, and a no-op rerun rebuilds nothing.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from SCons.Action import Action  # type: ignore[import-untyped]
from SCons.Script import Alias, AlwaysBuild, Default, Environment, Exit, Help, SConsignFile  # type: ignore[import-untyped]

from qmcu import atomic, buildlock, seals
from qmcu.build import cross, elfcheck, toolchain
from qmcu.codegen import board_config, linker_script
from qmcu.errors import QmcuError
from qmcu.options import DEFAULTS, HELP, BuildOptions, output_options, parse_options
from qmcu.paths import BUILD_DIR, FIRMWARE_DIR, PACKAGE_DIR, REPO_ROOT

logger = logging.getLogger(__name__)
CODEGEN = PACKAGE_DIR / "codegen"
BUILD = PACKAGE_DIR / "build"
TARGET_PREFIX = toolchain.TARGET_PREFIX

Step = Callable[[list[Path], list[Path], dict[str, Any]], None]


def _emit_headers(t: list[Path], s: list[Path], a: dict[str, Any]) -> None:
    from qmcu.codegen.model_header import emit_headers
    from qmcu.quant import intmodel

    emit_headers(intmodel.load(s[0]), t)


def _emit_vectors(t: list[Path], s: list[Path], a: dict[str, Any]) -> None:
    from qmcu.codegen.vectors import emit_vectors
    from qmcu.quant import intmodel

    rows = a.get("rows")
    emit_vectors(intmodel.load(s[0]), a["mode"], t[0], Path(a["testset"]), None if rows is None else tuple(rows))


def _linker_script(t: list[Path], s: list[Path], a: dict[str, Any]) -> None:
    linker_script.write_linker_script(parse_options(a["options"]).board, t[0])


def _check_image(t: list[Path], s: list[Path], a: dict[str, Any]) -> None:
    from qmcu.build.image_model import check_image_holds_model
    from qmcu.quant import intmodel

    opts = parse_options(a["options"])
    elfcheck.check_fits(opts.board, s[0])
    checked = elfcheck.check_float_free(s[0], Path(f"{s[0]}.map"), opts.corner, ["qmcu_infer"])
    model_line = check_image_holds_model(s[0], intmodel.load(Path(a["intmodel"])),
                                         seed_api=opts.kind.seed_tutorial and opts.corner.std and opts.corner.float)
    checked["checks"].insert(0, model_line)
    atomic.write_text(t[0], json.dumps(checked, indent=1, default=str) + "\n")


def _board_config(t: list[Path], s: list[Path], a: dict[str, Any]) -> None:
    opts = parse_options(a["options"])
    board_config.write_board_config(opts.board, t[0], opts.console)


def _flash(t: list[Path], s: list[Path], a: dict[str, Any]) -> None:
    from qmcu.run import flash

    opts = parse_options(a["options"])
    if opts.board.kind != "hardware":
        raise QmcuError(f"board {opts.board.id} is a {opts.board.kind} board: there is nothing to flash",
                        "use `scons board=<id> run`; flash is for boards of kind hardware")
    flash.flash(opts.board, Path(a["program"]), opts.flasher or None, dry_run=opts.dry_run)


def _dry_run(opts: BuildOptions, program: Path) -> None:
    """Print the exact flash command and the serial settings of a real-board run; touch nothing."""
    from qmcu.run.board import run_board

    if opts.board.kind != "hardware":
        raise QmcuError(f"dry_run=1 applies to real boards; {opts.board.id} is a {opts.board.kind} board", "drop dry_run=1")
    run_board(opts.board, program, opts.port or None, opts.flasher or None, opts.timeout, dry_run=True)


def _print_size(t: list[Path], s: list[Path], a: dict[str, Any]) -> None:
    from qmcu.judge.run_and_judge import forward_sizes

    opts = parse_options(a["options"])
    program = Path(a["program"])
    if not opts.board.is_target:
        print("size: the host program has no flash/RAM budget")
        return
    sizes = {**elfcheck.image_sizes(program, TARGET_PREFIX), **forward_sizes(program, TARGET_PREFIX)}
    print(f"{program.name}: flash {sizes['flash']} B, RAM {sizes['ram']} B; forward path flash "
          f"{sizes['forward_flash']} B, RAM {sizes['forward_ram']} B")


def _run(t: list[Path], s: list[Path], a: dict[str, Any]) -> None:
    from qmcu.judge import report, run_and_judge
    from qmcu.quant import intmodel

    opts = parse_options(a["options"])
    program = Path(a["program"])
    if opts.dry_run:
        _dry_run(opts, program)
        return
    parts = [(int(p[0]), int(p[1])) for p in a["parts"]] if a.get("parts") else None
    programs = [Path(p) for p in a["programs"]]
    if a.get("matrix"):
        _run_matrix_cell(opts, programs, parts, Path(a["intmodel"]))
        return
    doc = run_and_judge.run(opts, program, intmodel.load(Path(a["intmodel"])), programs, parts)
    for line in doc.get("console", []):
        print(line)
    for line in report.summary_lines(doc):
        print(line)
    print(f"report: {program.parent / opts.report_name}")
    if not doc["passed"]:
        raise QmcuError(f"run on {opts.board.id} failed", "see the FAIL lines above")


def _run_matrix_cell(opts: BuildOptions, programs: list[Path], parts: list[tuple[int, int]] | None,
                     intmodel_path: Path) -> None:
    """A matrix cell records its result (report + status file) instead of failing the build."""
    from qmcu.judge import run_and_judge
    from qmcu.matrix import cells
    from qmcu.quant import intmodel

    status = (opts.build_dir / opts.report_name).with_suffix(".status.json")
    (opts.build_dir / opts.report_name).unlink(missing_ok=True)
    name = f"{opts.board.id}/{opts.model}/{opts.corner.name}/{opts.console}/{opts.mode}"
    try:
        doc = run_and_judge.run(opts, programs[0], intmodel.load(intmodel_path), programs, parts)
    except QmcuError as err:
        atomic.write_text(status, json.dumps({"error": str(err)}) + "\n")
        cells.cell_finished(name, None, str(err))
        return
    atomic.write_text(status, json.dumps({"error": None}) + "\n")
    tail = "\n".join(doc.get("console", [])[-8:])
    cells.cell_finished(name, doc, None, "" if doc["passed"] else tail)




def _run_step(target: list[Any], source: list[Any], env: Any) -> int:
    targets = [Path(str(x)) for x in target]
    try:
        STEPS[env["QMCU_STEP"]](targets, [Path(str(x)) for x in source], json.loads(env["QMCU_ARGS"]))
    except QmcuError as err:
        print(f"qmcu: error: {err}", file=sys.stderr)
        return 1
    for path in targets:
        seals.record(path)
    return 0


def _seal_outputs(target: list[Any], source: list[Any], env: Any) -> int:
    """Post-action of compiler outputs (objects, programs, link maps): seal what was just written."""
    for node in target:
        path = Path(str(node))
        seals.record(path)
        if path.suffix == ".elf":
            seals.record(Path(f"{path}.map"))
    return 0


_SEAL_ACTION = Action(_seal_outputs, strfunction=lambda *_: None)
# Every file this graph generates; checked against its seal before the build starts (see seals.py).
_GENERATED: list[Path] = []


def _sealed(env: Any, nodes: Any, *extra: Path) -> Any:
    env.AddPostAction(nodes, _SEAL_ACTION)
    _GENERATED.extend([Path(str(n)) for n in nodes] + list(extra))
    return nodes


def _step_message(target: list[Any], source: list[Any], env: Any) -> str | None:
    """The step's one-line message; None (print nothing) for steps that report for themselves."""
    return env.subst("$QMCU_MESSAGE", target=target, source=source) or None


_STEP_ACTION = Action(_run_step, strfunction=_step_message, varlist=["QMCU_STEP", "QMCU_ARGS"])


def _step(env: Any, target: Any, sources: list[Any], step: str, args: dict[str, Any], message: str) -> Any:
    nodes = env.Command(target, sources, _STEP_ACTION, QMCU_STEP=step, QMCU_ARGS=json.dumps(args, sort_keys=True),
                        QMCU_MESSAGE=message)
    _GENERATED.extend(Path(str(n)) for n in nodes)
    return nodes


def _model_nodes(env: Any, opts: BuildOptions) -> tuple[Any, list[Any]]:
    """(intmodel.json, [model.hpp, weights.hpp for the seed tutorial]): committed, or built from a model file."""
    from qmcu.codegen.model_header import header_names

    mdir = opts.model_dir
    names = header_names(opts.kind.seed_tutorial)
    if opts.committed is not None:
        _check_committed(mdir, names)
        return env.File(str(mdir / "intmodel.json")), [env.File(str(mdir / n)) for n in names]
    return _model_file_nodes(env, opts, names)


def _model_file_nodes(env: Any, opts: BuildOptions, names: list[str]) -> tuple[Any, list[Any]]:
    """A model file (or .pt2 + .npz): quantized by the model stage before the graph is planned (its test set
    decides how many images there are, see modelstage.py); its headers are a step of the graph."""
    from qmcu import interrupt
    from qmcu.build.modelstage import ensure_quantized

    interrupt.install_handlers()  # Ctrl-C during training stops at once, as during the build
    intmodel_path, testset = ensure_quantized(opts)
    intmodel = env.File(str(intmodel_path))
    headers = _step(env, [str(opts.model_dir / n) for n in names],
                    [intmodel, *(str(CODEGEN / f) for f in ("model_header.py", "seed_header.py", "cpp.py", "kernel_layout.py"))],
                    "emit_headers", {}, "emitting ${TARGETS}")
    env.Depends(headers, str(testset))
    return intmodel, list(headers)


def _check_committed(folder: Path, names: list[str]) -> None:
    """A committed model's headers must be exactly what qmcu emits for its committed intmodel.json."""
    from qmcu.codegen.model_header import render_model_header
    from qmcu.codegen.seed_header import render_seed_header
    from qmcu.quant import intmodel

    renderers = {"model.hpp": render_model_header, "weights.hpp": render_seed_header}
    for name in names:
        stale = intmodel.stale_emission(folder / "intmodel.json", folder / name, renderers[name])
        if stale:
            raise QmcuError(f"{folder / name} is not what qmcu emits for intmodel.json ({stale}: edited by hand, "
                            "or stale)", "restore it with git checkout, or regenerate the folder with `qmcu freeze`")
    if not (folder / "testset.npz").is_file():
        raise QmcuError(f"committed model {folder} has no testset.npz", "restore it with git checkout")


_OVERFLOW = re.compile(r"region [`']?(\w+)'? overflowed by (\d+) bytes")


_RAM_ASSERT = "qmcu: .data + .bss + stack do not fit in RAM"  # codegen/linker_script.py's ASSERT
_OVERLAP = re.compile(r"section \S+ VMA \[([0-9a-f]+),[0-9a-f]+\] overlaps section \S+ VMA \[[0-9a-f]+,([0-9a-f]+)\]")


def _overflow_bytes(reported: str, stderr: str) -> int:
    """ld says "overflowed by 0 bytes" when the linker script's own RAM check fails: then the overlap of the
    stack with the data below it is the shortfall."""
    if int(reported) or not (m := _OVERLAP.search(stderr)):
        return int(reported)
    return int(m.group(2), 16) + 1 - int(m.group(1), 16)


def _link_spawn(opts: BuildOptions, parts: int, verbose: bool) -> Callable[..., int]:
    """Run the linker; a memory region overflow becomes one line naming the board, the region and the cause."""
    def spawn(sh: str, escape: Any, cmd: str, args: list[str], env: dict[str, str]) -> int:
        proc = subprocess.run([sh, "-c", " ".join(args)], env=env, capture_output=True, text=True, check=False)
        found = _OVERFLOW.findall(proc.stderr) if proc.returncode else []
        if proc.returncode and not found and _RAM_ASSERT in proc.stderr:  # the linker script's own RAM check
            found = [("RAM", "0")]
        if not found:
            sys.stdout.write(proc.stdout)
            sys.stderr.write(proc.stderr)
            if proc.returncode and not verbose:
                print(f"qmcu: this command failed (exit {proc.returncode}): {' '.join(args)}", file=sys.stderr)
            return proc.returncode
        what = ", ".join(f"{region} by {_overflow_bytes(n, proc.stderr)} bytes" for region, n in dict(found).items())
        cause = (f"its test set is already split over {parts} images, so the model's constants and the code are too "
                 "large for this board" if parts > 1 else "the model's constants and the code are too large for it")
        print(f"qmcu: error: the image does not fit board {opts.board.id}: it overflows {what}; {cause}, "
              "or pick a board with more memory", file=sys.stderr)
        return proc.returncode
    return spawn


# One line per object and per program unless verbose=1 (SCons leaves *COMSTR out of every signature).
QUIET_COMSTR = {"CXXCOMSTR": "compiling $SOURCE -> $TARGET", "CCCOMSTR": "compiling $SOURCE -> $TARGET",
                "LINKCOMSTR": "linking $TARGET"}


def show_failed_command(spawn: Callable[..., int]) -> Callable[..., int]:
    """Quiet output hides command lines; a failing compile still shows its full command line, after the
    compiler's own messages (which pass through untouched)."""
    def wrapped(sh: str, escape: Any, cmd: str, args: list[str], env: dict[str, str]) -> int:
        code = spawn(sh, escape, cmd, args, env)
        if code:
            print(f"qmcu: this command failed (exit {code}): {' '.join(args)}", file=sys.stderr)
        return code
    return wrapped


def _compiler(opts: BuildOptions, gen_dir: Path) -> cross.Compiler:
    includes = [gen_dir, gen_dir / "platform", opts.model_dir]
    if opts.board.is_target:
        return cross.target_compiler(opts.board, opts.corner, f"-{opts.opt}", opts.console, include_dirs=includes)
    return cross.host_compiler(opts.corner, f"-{opts.opt}", include_dirs=includes)


def _firmware_env(compiler: cross.Compiler, verbose: bool = False) -> Any:
    env = Environment(ENV={"PATH": os.environ.get("PATH", "")})
    if not verbose:
        env.Replace(**QUIET_COMSTR, SPAWN=show_failed_command(env["SPAWN"]))
    return _compiling_with(env, compiler)


def _compiling_with(env: Any, compiler: cross.Compiler) -> Any:
    """env's objects compile with cross.py's command line (a list in a list: one command, not one per
    argument); CPPPATH is only read by SCons's header scanner."""
    env.Replace(CXXCOM=[compiler.compile_argv("$SOURCE", "$TARGET")], CPPPATH=list(compiler.include_dirs))
    return env


def _start() -> None:
    """Before any graph (options already checked): the build folder is ours alone, with its own SCons
    database, and a signal stops every child at once (SCons's own handler waits for the running step)."""
    from qmcu import interrupt

    interrupt.patch_scons()
    if "-h" in sys.argv or "--help" in sys.argv:
        return
    buildlock.acquire(BUILD_DIR)
    SConsignFile(str(BUILD_DIR / ".sconsign"))


def _discard_edited_outputs() -> None:
    edited, unsealed = seals.discard_unsealed(_GENERATED)
    for path in edited:
        print(f"qmcu: {path} was changed after qmcu wrote it; regenerating it", file=sys.stderr)
    if unsealed:
        logger.info("regenerating %d files without a qmcu seal", len(unsealed))


def setup(arguments: dict[str, str], targets: list[str] | None = None) -> None:
    Help(_help_text())
    if "-h" in sys.argv or "--help" in sys.argv:
        return  # the help text only: no graph, so no model stage either
    try:
        verbose, arguments = output_options(dict(arguments))  # verbose= only changes what is printed
        if "matrix" in (targets or []):
            _start()
            _matrix_graph(arguments, "matrix", verbose)
        elif "bench" in (targets or []):
            _start()
            _matrix_graph(arguments, "bench", verbose)
        else:
            opts = parse_options(arguments)
            if "check" in (targets or []):
                from qmcu.codegen.plan import print_plan

                print_plan(opts)  # the plan only: nothing built, no lock taken
                Alias("check", [])
                return
            _start()
            base = Environment(ENV={"PATH": os.environ.get("PATH", "")})
            nodes = _cell_graph(base, opts, arguments, _model_nodes(base, opts), verbose=verbose)
            base.Alias("build", nodes["checked"])
            base.Alias("size", nodes["size"])
            base.Alias("run", nodes["run"])
            base.Alias("flash", nodes["flash"])
            Default("build")
        _discard_edited_outputs()
    except QmcuError as err:
        print(f"qmcu: error: {err}", file=sys.stderr)
        Exit(2)


_LINKER_SCRIPTS: dict[str, Any] = {}


def _parts(opts: BuildOptions, intmodel_path: Path) -> list[Any]:
    """The images this cell's test set needs (one unless it does not fit the board's flash)."""
    from qmcu.build import parts
    from qmcu.codegen.vectors import row_count
    from qmcu.quant import intmodel

    if opts.mode == "exhaustive":  # generated on the target: no vectors in the image
        return [parts.Part(0, 0, 0)]
    model = intmodel.load(intmodel_path)
    per_image = parts.rows_per_image(opts.board, opts.corner, model, opts.kind.seed_tutorial)
    return parts.plan(row_count(model, opts.mode, opts.testset), per_image)


def _cell_graph(base: Any, opts: BuildOptions, arguments: dict[str, str], model: tuple[Any, list[Any]],
                matrix: bool = False, verbose: bool = False) -> dict[str, Any]:
    """One configuration: vectors -> objects -> program(s) -> image checks -> run step. A test set too
    large for one image becomes several (parts): each its own vectors, application object and program."""
    intmodel, headers = model
    bdir = opts.build_dir
    gen_dir = bdir / "gen" / opts.artifact_stem
    testset = opts.testset
    objdir = bdir / "obj" / opts.artifact_stem
    compiler = _compiler(opts, gen_dir)
    env = _firmware_env(compiler, verbose)
    platform = toolchain.platform_sources(opts.board, opts.corner, opts.console) if opts.board.is_target else \
        toolchain.platform_sources(opts.board, opts.corner)
    platform_objects = [_sealed(env, env.Object(str(objdir / f"{src.parent.name}_{src.stem}.o"), str(src)))
                        for src in platform]
    generated = list(headers)
    if opts.board.is_target and board_config.needs_board_config(opts.board, opts.console):
        generated += _step(base, str(gen_dir / "platform" / "board_config.hpp"),
                           [str(CODEGEN / "board_config.py"), str(opts.board_file)], "board_config",
                           {"options": arguments}, "writing $TARGET")
    for obj in platform_objects:
        env.Depends(obj, generated)
    board_args = {"options": arguments}
    ld = None
    if opts.board.is_target:
        ld_path = str(bdir / "link.ld")
        if ld_path not in _LINKER_SCRIPTS:  # one per build folder, shared by the modes built there
            _LINKER_SCRIPTS[ld_path] = _step(base, ld_path, [str(CODEGEN / "linker_script.py"), str(opts.board_file)],
                                             "linker_script", {"options": {"board": opts.board.id}}, "writing $TARGET")
        ld = _LINKER_SCRIPTS[ld_path]
    plan = _parts(opts, Path(str(intmodel)))
    programs, checks = [], []
    for part in plan:
        stem = opts.artifact_stem + (f"-part{part.index}" if part.index else "")
        part_gen = bdir / "gen" / stem
        rows = {"rows": [part.start, part.stop]} if len(plan) > 1 else {}
        vectors = _step(base, str(part_gen / "vectors.hpp"),
                        [intmodel, str(CODEGEN / "vectors.py"), str(CODEGEN / "cpp.py"), str(testset)],
                        "emit_vectors", {"mode": opts.mode, "testset": str(testset), **rows}, "emitting $TARGET")
        part_compiler = compiler.including(part_gen)
        part_env = _compiling_with(env.Clone(), part_compiler)
        app = _sealed(part_env, part_env.Object(str(bdir / "obj" / stem / "app_model_app.o"),
                                                str(FIRMWARE_DIR / "app" / "model_app.cpp")))
        part_env.Depends(app, generated + vectors)
        program_path = bdir / (stem + (".elf" if opts.board.is_target else ""))
        if opts.board.is_target:
            link = [part_compiler.link_argv(["$SOURCES"], "$TARGET", bdir / "link.ld", f"{program_path}.map")]
            link_spawn = _link_spawn(opts, len(plan), verbose)
            program = _sealed(part_env, part_env.Program(str(program_path), app + platform_objects, LINKCOM=link,
                                                         SPAWN=link_spawn), Path(f"{program_path}.map"))
            part_env.Depends(program, ld)
            part_env.SideEffect(str(program_path) + ".map", program)
            check_code = [str(BUILD / "elfcheck.py"), str(BUILD / "image_model.py"), str(CODEGEN / "kernel_layout.py")]
            checks += _step(base, str(program_path) + ".checked", program + [intmodel] + check_code, "check_image",
                            {**board_args, "intmodel": str(intmodel)},
                            "checking $SOURCE: holds the model; fits the board; float-/libc-free as the corner demands")
        else:
            link = [part_compiler.link_argv(["$SOURCES"], "$TARGET")]
            checks += _sealed(part_env, part_env.Program(str(program_path), app + platform_objects, LINKCOM=link))
        programs.append(str(program_path))
    run_args = {**board_args, "program": programs[0], "programs": programs, "intmodel": str(intmodel),
                "matrix": matrix, "parts": [[p.start, p.stop] for p in plan] if len(plan) > 1 else None}
    flash = _step(base, programs[0] + ".flashed", checks[0], "flash", run_args, "")
    AlwaysBuild(flash)
    size = _step(base, programs[0] + ".size-shown", checks, "size", run_args, "size of $SOURCE")
    AlwaysBuild(size)
    message = "" if matrix else f"running on {opts.board.id} ({opts.corner.name}, {opts.console}, {opts.mode})" + (
        f": the test set in {len(plan)} images of up to {plan[0].count} rows" if len(plan) > 1 else "")
    run = _step(base, str(bdir / f".{opts.artifact_stem}.run"), [*checks, intmodel], "run", run_args, message)
    AlwaysBuild(run)
    return {"checked": checks, "size": size, "run": run, "flash": flash}


def _matrix_graph(arguments: dict[str, str], target: str, verbose: bool = False) -> None:
    """Every cell of the matrix (or the bench) in one graph, run in parallel by scons -j, then one
    aggregate step that judges them together."""
    from qmcu.matrix import bench, cells, summary

    if target == "matrix":
        todo, _ = cells.enumerate_cells(arguments)
        summary.clear_outputs()
        out_dir = cells.matrix_dir()
    else:
        todo, _ = bench.enumerate_bench_cells(arguments)
        out_dir = bench.bench_dir()
    if not todo:
        raise QmcuError(f"no {target} cell can run here with these options", "check boards= (see `qmcu boards`)")
    cells.start_progress(len(todo))
    base = Environment(ENV={"PATH": os.environ.get("PATH", "")})
    models: dict[str, tuple[Any, Any]] = {}
    runs = []
    for cell in todo:
        if cell.opts.model not in models:
            models[cell.opts.model] = _model_nodes(base, cell.opts)
        runs.append(_cell_graph(base, cell.opts, cell.arguments, models[cell.opts.model], matrix=True,
                                verbose=verbose)["run"])
    agg = _step(base, str(out_dir / ".aggregate"), runs, f"{target}_finish",
                {"arguments": arguments, "t0": time.time()}, "")
    AlwaysBuild(agg)
    base.Alias(target, agg)


def _matrix_finish(t: list[Path], s: list[Path], a: dict[str, Any]) -> None:
    from qmcu.matrix import cells, summary

    done, skipped = cells.enumerate_cells(a["arguments"])
    summary.finish(done, skipped, time.time() - a["t0"], a["arguments"].get("update_budgets") == "1")


def _bench_finish(t: list[Path], s: list[Path], a: dict[str, Any]) -> None:
    from qmcu.matrix import bench

    done, skipped = bench.enumerate_bench_cells(a["arguments"])
    bench.finish_bench(done, skipped, time.time() - a["t0"])


def _help_text() -> str:
    lines = ["qmcu: scons [build|run|size|flash|check|matrix|bench] key=value ...", "", "options:"]
    lines += [f"  {k}={DEFAULTS[k] or '<none>'}  {HELP[k]}" for k in DEFAULTS]
    return "\n".join(lines) + f"\n\nrepo: {REPO_ROOT}\n"


STEPS: dict[str, Step] = {"emit_headers": _emit_headers,
                          "emit_vectors": _emit_vectors, "linker_script": _linker_script,
                          "check_image": _check_image, "board_config": _board_config, "flash": _flash,
                          "size": _print_size, "run": _run,
                          "matrix_finish": _matrix_finish, "bench_finish": _bench_finish}

__all__ = ["setup", "STEPS"]
