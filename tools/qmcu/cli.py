"""`qmcu` command line: the pipeline steps one by one (SCons runs the same functions as a graph)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from qmcu.errors import QmcuError
from qmcu.modelref import TRAINING_OPTIONS
from qmcu.paths import scons_location

logger = logging.getLogger(__name__)


_WRITE_FIX = "give --out a path in a writable directory"


def check_writable(out: Path) -> None:
    """Before any work: --out must be creatable (its nearest existing ancestor a writable directory) and not a folder."""
    if out.is_dir():
        raise QmcuError(f"cannot write --out {out}: it is a directory", _WRITE_FIX)
    parent = out.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise QmcuError(f"cannot write --out {out}: {parent} is not a directory", _WRITE_FIX)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise QmcuError(f"cannot write --out {out}: {parent} is not writable", _WRITE_FIX)


@contextlib.contextmanager
def writing(out: Path) -> Iterator[None]:
    """Check --out first, and turn a failure to write it (or its temporary file beside it) into one line."""
    check_writable(out)
    try:
        yield
    except OSError as err:
        failed = Path(os.fsdecode(err.filename)) if err.filename is not None else None
        if failed is None or not (failed == out or failed in out.parents or failed.parent == out.parent):
            raise
        raise QmcuError(f"cannot write --out {out}: {err.strerror or err} ({failed})", _WRITE_FIX) from err


def _cmd_quantize(args: argparse.Namespace) -> None:
    """`qmcu quantize --model f.py [--data set.npz] [--out DIR] [seed=7 weights=per_channel ...]`."""
    from qmcu.codegen.quantize_step import quantize_file_step
    from qmcu.options import parse_options

    opts = parse_options({**dict(_key_values(args.options)), "model": str(args.model.resolve()),
                          **({"data": str(args.data.resolve())} if args.data else {})})
    if opts.model_file is None:  # parse_options turned a built-in name into its model file
        raise QmcuError(f"{args.model} is not a model file", "give --model path/to/model.py or net.pt2 --data set.npz")
    out = args.out or opts.model_dir
    with writing(out / "intmodel.json"):
        quantize_file_step(opts.model_file, opts.data_file, out / "intmodel.json", out / "testset.npz",
                           weights=opts.weights, options={k: getattr(opts, k) for k in TRAINING_OPTIONS},
                           calibration_file=opts.calibration)
    print(f"integer model -> {out / 'intmodel.json'}, test set -> {out / 'testset.npz'}")


def _cmd_emit(args: argparse.Namespace) -> None:
    """The headers of an integer model (model.hpp; weights.hpp too for the seed tutorial) beside it or in --out."""
    from qmcu.codegen.model_header import emit_headers, header_renderers
    from qmcu.quant import intmodel

    model = intmodel.load(args.intmodel)
    out = args.out or args.intmodel.parent
    paths = [out / name for name in header_renderers(model)]
    with writing(paths[0]):
        emit_headers(model, paths)
    print(f"headers -> {', '.join(map(str, paths))}")


def _cmd_freeze(args: argparse.Namespace) -> None:
    """Quantize a model file into a committed folder (or --check the folder is current)."""
    from qmcu.codegen.quantize_step import freeze

    model_file, folder = args.model_file.resolve(), args.folder.resolve()
    if args.check:
        freeze(model_file, folder, check=True)
        print(f"{folder} is current: the quantization of {model_file.name}, its headers a fresh emission")
        return
    with writing(folder / "intmodel.json"):
        written = freeze(model_file, folder)
    print(f"wrote {', '.join(map(str, written))}")
    print(f"now commit {folder} and regenerate the budgets: .venv/bin/qmcu matrix --update-budgets")


def _cmd_boards(_: argparse.Namespace) -> None:
    from qmcu.boards import board_files, load_all
    from qmcu.paths import BOARDS_DIR

    files = board_files()
    for b in load_all():
        yours = "" if files[b.id].parent == BOARDS_DIR else f"  (from {files[b.id]})"
        print(f"{b.id:14s} {b.kind:8s} {b.cpu or '-':11s} {b.description}{yours}")


def _cmd_scons(args: argparse.Namespace) -> None:
    """Pass through to the SCons build (same options): `qmcu scons board=host run`."""
    scons = Path(sys.executable).with_name("scons")
    os.execv(str(scons), [str(scons), *scons_location(), "-Q", *args.rest])  # scons gets the signals itself


def _cmd_run(args: argparse.Namespace) -> None:
    """`qmcu run --model my_model.py [--data set.npz] board=qemu-m4 ...`: the same as `scons model=... run`."""
    scons = Path(sys.executable).with_name("scons")
    model = [f"model={args.model.resolve()}"] if args.model else []
    data = [f"data={args.data.resolve()}"] if args.data else []
    os.execv(str(scons), [str(scons), *scons_location(), "-Q", *model, *data, *args.options, "run"])


def _cmd_check(args: argparse.Namespace) -> None:
    """`qmcu check --model my_model.py [--data set.npz] [board=qemu-m4]`: the plan, nothing built."""
    from qmcu.codegen.plan import print_plan
    from qmcu.options import parse_options

    given = dict(_key_values(args.options))
    opts = parse_options({**given, "model": str(args.model.resolve()),
                          **({"data": str(args.data.resolve())} if args.data else {})})
    print_plan(opts)


def _key_values(options: list[str]) -> list[tuple[str, str]]:
    bad = [o for o in options if "=" not in o]
    if bad:
        raise QmcuError(f"{bad[0]!r} is not a key=value option", "give options such as board=qemu-m4")
    return [(k, v) for k, _, v in (o.partition("=") for o in options)]


def _cmd_matrix(args: argparse.Namespace) -> None:
    """The regression matrix (or the bench) through SCons: one graph, -j cells in parallel."""
    scons = Path(sys.executable).with_name("scons")
    extra = [*args.options, *(["update_budgets=1"] if getattr(args, "update_budgets", False) else [])]
    os.execv(str(scons), [str(scons), *scons_location(), "-Q", f"-j{args.jobs}", args.target, *extra])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qmcu", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)
    q = sub.add_parser("quantize", help="capture, calibrate and quantize a model file into intmodel.json + testset.npz")
    q.add_argument("--model", type=Path, required=True, help="a model file (.py) or torch.export program (.pt2)")
    q.add_argument("--data", type=Path, default=None, help="with a .pt2: .npz holding calibration, x_test, y_test")
    q.add_argument("--out", type=Path, default=None, help="folder (default: build/models/<name>)")
    q.add_argument("options", nargs="*", help="key=value options, e.g. seed=7 weights=per_channel calibration=c.csv")
    q.set_defaults(func=_cmd_quantize)
    e = sub.add_parser("emit", help="emit an integer model's C++ headers")
    e.add_argument("--intmodel", type=Path, required=True)
    e.add_argument("--out", type=Path, default=None, help="folder (default: the intmodel's)")
    e.set_defaults(func=_cmd_emit)
    f = sub.add_parser("freeze", help="quantize a model file into a committed folder (firmware/models/...)")
    f.add_argument("model_file", type=Path)
    f.add_argument("folder", type=Path)
    f.add_argument("--check", action="store_true", help="only verify the folder is current")
    f.set_defaults(func=_cmd_freeze)
    sub.add_parser("boards", help="list the boards").set_defaults(func=_cmd_boards)
    r = sub.add_parser("run", help="build, run on the board and judge a model: --model my_model.py (or net.pt2 --data set.npz)")
    r.add_argument("--model", type=Path, default=None, help="a model file (.py) or torch.export program (.pt2)")
    r.add_argument("--data", type=Path, default=None, help="with a .pt2: .npz holding calibration, x_test, y_test")
    r.add_argument("options", nargs="*", help="key=value options, e.g. board=qemu-m4 min_accuracy=0.9")
    r.set_defaults(func=_cmd_run)
    c = sub.add_parser("check", help="without building: each layer as kernel/fused/folded/dropped/table, MACs, "
                       "bytes, activation RAM, and whether it fits the board")
    c.add_argument("--model", type=Path, required=True, help="a model file (.py) or torch.export program (.pt2)")
    c.add_argument("--data", type=Path, default=None, help="with a .pt2: .npz holding calibration, x_test, y_test")
    c.add_argument("options", nargs="*", help="key=value options, e.g. board=qemu-m4")
    c.set_defaults(func=_cmd_check)
    m = sub.add_parser("matrix", help="run the regression matrix (every board x corner x mode)")
    m.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 2)
    m.add_argument("--update-budgets", action="store_true", help="rewrite boards/budgets/ from this run")
    m.add_argument("options", nargs="*", help="key=value options, e.g. boards=host,qemu-m4 modes=xor")
    m.set_defaults(func=_cmd_matrix, target="matrix")
    b = sub.add_parser("bench", help="instructions per inference, per MAC and bytes of each network on each QEMU board")
    b.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 2)
    b.add_argument("options", nargs="*", help="key=value options, e.g. boards=qemu-m4,qemu-m0 opt=Os")
    b.set_defaults(func=_cmd_matrix, target="bench")
    s = sub.add_parser("scons", help="run the SCons build with key=value options and targets")
    s.add_argument("rest", nargs=argparse.REMAINDER)
    s.set_defaults(func=_cmd_scons)
    return p


def main(argv: list[str] | None = None) -> int:
    from qmcu import interrupt

    interrupt.install_handlers()  # Ctrl-C/SIGTERM stop training or QEMU at once, leaving only whole files
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        args.func(args)
    except QmcuError as err:
        print(f"qmcu: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
