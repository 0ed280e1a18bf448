"""Command-line options shared by `scons key=value ...` and the `qmcu` CLI, validated in one place."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from qmcu.boards import FLASHERS, Board, Corner, board_file, board_names, load_board, make_corner
from qmcu.errors import QmcuError
from qmcu.modelref import ALIASES, BUILT_IN, COMMITTED, ModelKind, committed_kind, declared, is_model_path
from qmcu.paths import BUILD_DIR, WORK_DIR

OPTS = ("O2", "Os", "O3", "O0")
SEED_MIN, SEED_MAX = -(2**63), 2**64 - 1  # what torch.manual_seed accepts
MAX_TIMEOUT_S = 86400.0  # a day: no run takes longer, and larger values overflow the runners' waits

DEFAULTS: dict[str, str] = {
    "board": "qemu-m4", "model": "trained", "STD": "0", "FLOAT": "0", "mode": "", "opt": "O2",
    "seed": "42", "epochs": "4000", "lr": "0.1", "max_tries": "8", "calibration": "", "timeout": "120",
    "boards": "", "modes": "", "update_budgets": "0", "data": "", "max_drop": "", "min_accuracy": "",
    "weights": "per_tensor",
    "console": "", "transport": "socket", "port": "", "flasher": "", "dry_run": "0",
    "verbose": "0",
}
HELP: dict[str, str] = {
    "board": "board id, a file in boards/ (built-in, or in the work folder's boards/ with an installed wheel)",
    "weights": "model files: per_tensor (one weight scale per layer) or per_channel (one scale and requantizer per "
               "output row)",
    "data": "with model=net.pt2: a .npz holding calibration, x_test, y_test",
    "max_drop": "accuracy gate: FAIL if target accuracy < float accuracy - max_drop (overrides the model file's)",
    "min_accuracy": "accuracy gate: FAIL below this fraction (overrides the model file's)",
    "model": "a model file (path/to/model.py, or net.pt2 with data=), or a built-in: trained (examples/xor.py), "
             "textbook (committed XOR model, no torch), digits (examples/digits.py) or "
             "digits-committed (its committed integer model)",
    "STD": "1 lets the firmware use the C++ standard library / newlib",
    "FLOAT": "1 compiles float quantize/dequantize into the firmware (hard-float on FPU cores)",
    "mode": "test (the model's test set; called xor for the seed tutorial's XOR: 4 points + 41x41 grid) or "
            "exhaustive (every int8 input, models with 1 or 2 inputs)",
    "opt": "compiler optimisation level for the firmware",
    "seed": "training seed, for a model file whose model() takes `seed` (XOR: later seeds are tried if a ReLU dies)",
    "epochs": "training epochs (model() parameter)", "lr": "learning rate (model() parameter)",
    "max_tries": "training seeds to try (model() parameter)",
    "calibration": "model files: .npy/.csv file of N x features calibration inputs (default: the file's calibration())",
    "timeout": "seconds before a run on QEMU/host is killed",
    "boards": "matrix only: comma-separated boards (default: all runnable here)",
    "modes": "matrix/bench only: comma-separated modes (default: xor,exhaustive,test; test: the committed digits MLP)",
    "update_budgets": "matrix only: 1 rewrites boards/budgets/ from this run's figures",
    "console": "semihosting or uart (default: the board's first console)",
    "transport": "QEMU UART runs: socket (TCP, pyserial socket://) or pty (a /dev/pts device pyserial opens)",
    "port": "real boards: serial port of the ST-Link VCP (default: auto-detected by USB VID/PID)",
    "flasher": "real boards: openocd, pyocd or stflash (default: the board file's)",
    "dry_run": "real boards: 1 prints the exact flash command and serial settings, touching nothing",
    "verbose": "1 prints the compiler's and linker's full command lines (default: one `compiling`/`linking` line each)",
}
# Options that change what is printed, never what is built: kept out of every step's signature.
OUTPUT_ONLY = ("verbose",)


@dataclass(frozen=True)
class BuildOptions:
    board: Board
    corner: Corner
    model: str
    mode: str
    opt: str
    seed: int
    epochs: int
    lr: float
    max_tries: int
    calibration: Path | None
    timeout: float
    console: str = ""
    transport: str = "socket"
    port: str = ""
    flasher: str = ""
    dry_run: bool = False
    model_file: Path | None = None   # a user's model file (.py) or torch.export program (.pt2)
    data_file: Path | None = None    # the .npz that goes with a .pt2
    max_drop: float | None = None    # accuracy gates given on the command line
    min_accuracy: float | None = None
    weights: str = "per_tensor"       # per_tensor or per_channel (model files)
    kind: ModelKind = ModelKind(False)
    committed: Path | None = None     # a committed model's folder (model=textbook, digits-committed)

    @property
    def build_dir(self) -> Path:
        """build/<board>-<corner>[-<model>][-Os]: one folder per configuration, reports next to the image."""
        suffix = ("" if self.model == DEFAULTS["model"] else f"-{self.model}") + ("" if self.opt == "O2" else f"-{self.opt}")
        if self.console != self.board.consoles[0]:
            suffix += f"-{self.console}"
        return BUILD_DIR / f"{self.board.id}-{self.corner.name}{suffix}"

    @property
    def modes(self) -> tuple[str, ...]:
        return self.kind.modes

    @property
    def testset(self) -> Path:
        """The test set as the image holds it (the judge reads this, never the user's data)."""
        return self.model_dir / "testset.npz"

    @property
    def board_file(self) -> Path:
        return board_file(self.board.id)

    @property
    def model_dir(self) -> Path:
        return self.committed if self.committed is not None else BUILD_DIR / "models" / self.model

    @property
    def artifact_stem(self) -> str:
        return "app" if self.mode == self.modes[0] else f"app-{self.mode}"

    @property
    def report_name(self) -> str:
        return "report.json" if self.mode == self.modes[0] else f"report-{self.mode}.json"


def _as(kind: type, key: str, value: str, fix: str) -> int | float:
    try:
        return kind(value)
    except ValueError as err:
        raise QmcuError(f"{key}={value!r} is not a valid {kind.__name__}", fix) from err


def _choice(key: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise QmcuError(f"{key}={value!r} is not valid", f"use one of {', '.join(allowed)}")
    return value


def output_options(args: dict[str, str]) -> tuple[bool, dict[str, str]]:
    """(verbose, the arguments without the output-only options): what is printed is chosen here, and the
    rest goes into the graph, so verbose=1 rebuilds nothing."""
    verbose = _choice("verbose", args.get("verbose", DEFAULTS["verbose"]), ("0", "1")) == "1"
    return verbose, {k: v for k, v in args.items() if k not in OUTPUT_ONLY}


def parse_options(args: dict[str, str]) -> BuildOptions:
    unknown = sorted(set(args) - set(DEFAULTS))
    if unknown:
        raise QmcuError(f"unknown option(s) {', '.join(unknown)}", f"valid options: {', '.join(DEFAULTS)}")
    a = {**DEFAULTS, **args}
    _choice("verbose", a["verbose"], ("0", "1"))  # output only: not part of BuildOptions (see output_options)
    if a["board"] not in board_names():
        raise QmcuError(f"unknown board {a['board']!r}", f"valid boards: {', '.join(board_names())}")
    board = load_board(a["board"])
    corner = make_corner(a["STD"], a["FLOAT"], board)
    calibration = None
    if a["calibration"]:
        calibration = Path(a["calibration"])
        calibration = calibration if calibration.is_absolute() else WORK_DIR / calibration
        if a["model"] in COMMITTED:
            raise QmcuError(f"calibration= applies to model files, not the committed model={a['model']}",
                            "drop calibration= or give a model file (model=trained is examples/xor.py)")
    model_file, data_file = _model_paths(a)
    committed = None
    if model_file is not None:
        decl = declared(model_file)
        model = a["model"] if a["model"] in ALIASES else decl.name
        if model_file.suffix == ".py" and model not in ALIASES and model in BUILT_IN:
            raise QmcuError(f"model file {model_file.name} is named {model!r}, the name of a built-in model",
                            'give it another name (name = "..." in the file, or rename the file)')
        kind = ModelKind(decl.seed_tutorial)
    else:
        model = _choice("model", a["model"], BUILT_IN)
        committed = COMMITTED[model]
        kind = committed_kind(committed)
    modes = kind.modes
    opts = BuildOptions(
        board=board, corner=corner, model=model, mode=_choice("mode", a["mode"] or modes[0], modes),
        opt=_choice("opt", a["opt"], OPTS),
        seed=int(_as(int, "seed", a["seed"], "give an integer")),
        epochs=int(_as(int, "epochs", a["epochs"], "give a positive integer")),
        lr=float(_as(float, "lr", a["lr"], "give a number such as 0.1")),
        max_tries=int(_as(int, "max_tries", a["max_tries"], "give a positive integer")),
        calibration=calibration, timeout=float(_as(float, "timeout", a["timeout"], "give seconds")),
    )
    console = a["console"] or board.consoles[0]
    if console not in board.consoles:
        raise QmcuError(f"board {board.id} has no console {console!r}", f"use one of {', '.join(board.consoles)}")
    opts = dataclasses.replace(opts, console=console, transport=_choice("transport", a["transport"], ("socket", "pty")),
                               port=a["port"], flasher=a["flasher"], dry_run=_choice("dry_run", a["dry_run"], ("0", "1")) == "1")
    check_training(opts.seed, opts.epochs, opts.lr, opts.max_tries)
    if not math.isfinite(opts.timeout) or not 0 < opts.timeout <= MAX_TIMEOUT_S:
        raise QmcuError(f"timeout={a['timeout']} is not a number of seconds in (0, {MAX_TIMEOUT_S:g}]",
                        "give seconds such as timeout=120")
    _check_board_only(opts, a)
    gates = {k: _fraction(k, a[k]) for k in ("max_drop", "min_accuracy")}
    weights = _choice("weights", a["weights"], ("per_tensor", "per_channel"))
    if weights != "per_tensor" and model_file is None:
        raise QmcuError(f"weights={weights} applies to model files, not the committed model={a['model']}",
                        "drop weights= or give model=path/to/model.py")
    return dataclasses.replace(opts, model_file=model_file, data_file=data_file, weights=weights, kind=kind,
                               committed=committed, **gates)


def _model_paths(a: dict[str, str]) -> tuple[Path | None, Path | None]:
    """model=<file>.py|.pt2 and data=<file>.npz, resolved against the work folder (the checkout, or the folder a
    wheel's qmcu runs in)."""
    def resolve(value: str) -> Path:
        path = Path(value).expanduser()
        return (path if path.is_absolute() else WORK_DIR / path).resolve()

    if a["model"] in ALIASES:  # a built-in that is a model file in examples/
        a = {**a, "model": str(ALIASES[a["model"]])}
    if not is_model_path(a["model"]):
        if a["data"]:
            raise QmcuError(f"data= goes with model=<program>.pt2, not model={a['model']}", "drop data=")
        return None, None
    model_file = resolve(a["model"])
    if not model_file.is_file():
        raise QmcuError(f"model file {model_file} does not exist", "give model= the path of a .py model file or .pt2 program")
    data_file = resolve(a["data"]) if a["data"] else None
    if model_file.suffix == ".pt2" and data_file is None:
        raise QmcuError(f"model={model_file.name} needs its data", "give data=set.npz holding calibration, x_test, y_test")
    if model_file.suffix == ".py" and data_file is not None:
        raise QmcuError("data= goes with a .pt2 program; a model file brings its own data", "drop data=")
    if data_file is not None and not data_file.is_file():
        raise QmcuError(f"data file {data_file} does not exist", "give data= the path of a .npz file")
    return model_file, data_file


def _fraction(key: str, value: str) -> float | None:
    if value == "":
        return None
    v = float(_as(float, key, value, "give a fraction such as 0.02"))
    if not 0.0 <= v <= 1.0:
        raise QmcuError(f"{key}={value} is not a fraction in [0, 1]", f"give e.g. {key}=0.02")
    return v


def check_training(seed: int, epochs: int, lr: float, max_tries: int) -> None:
    """Refuse training settings torch cannot use, naming the setting, its value and a usable one."""
    if epochs < 1:
        raise QmcuError(f"epochs={epochs} is not a positive integer", "give epochs= of 1 or more (default 4000)")
    if max_tries < 1:
        raise QmcuError(f"max_tries={max_tries} is not a positive integer", "give max_tries= of 1 or more (default 8)")
    if not math.isfinite(lr) or lr <= 0:
        raise QmcuError(f"lr={lr} is not a positive finite number", "give a learning rate such as lr=0.1")
    highest = SEED_MAX - (max_tries - 1)  # training may try seed .. seed + max_tries - 1
    if not SEED_MIN <= seed <= highest:
        raise QmcuError(f"seed={seed} is out of range: with max_tries={max_tries} it must lie in [{SEED_MIN}, {highest}] "
                        "(torch seeds are 64-bit)", "give a seed such as seed=42")


def _check_board_only(opts: BuildOptions, a: dict[str, str]) -> None:
    """port=, flasher= and dry_run=1 program a real board: refuse them elsewhere, and check flasher= before any build."""
    board = opts.board
    given = [f"{k}={a[k]}" for k in ("port", "flasher") if a[k]] + (["dry_run=1"] if opts.dry_run else [])
    if board.kind != "hardware" and given:
        raise QmcuError(f"{' and '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to real boards; {board.id} is a "
                        f"{board.kind} board", f"drop {' and '.join(g.split('=')[0] + '=' for g in given)}")
    if opts.flasher:
        if opts.flasher not in FLASHERS:
            raise QmcuError(f"flasher={opts.flasher} is not a known flasher", f"use one of {', '.join(FLASHERS)}")
        assert board.flasher is not None  # boards.py requires "flash" on hardware boards
        if not board.flasher.supports(opts.flasher):
            usable = [f for f in FLASHERS if board.flasher.supports(f)]
            raise QmcuError(f"board {board.id} cannot be programmed with flasher={opts.flasher}",
                            f"use flasher={' or flasher='.join(usable)}, or add its setting to boards/{board.id}.json")
