"""The ``brainlib`` command line (also ``python -m brainlib``).

Subcommands: ``profiles``, ``verify``, ``audit``, ``split``, ``train``, ``evaluate``,
``analyse``, ``export``, ``run``, ``stand-in-weights``, ``phantoms``, ``manifest``
(``brainlib COMMAND --help`` says what each does; :mod:`brainlib.commands` does it).
Each data command takes a folder in the Kaggle layout, or none to use the profile's data
(phantoms for ``demo``/``smoke``; ``$BRAINLIB_DATA_DIR`` or a Kaggle download for ``paper``).
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import warnings

from brainlib import __version__
from brainlib.commands import (
    cmd_analyse,
    cmd_audit,
    cmd_cells,
    cmd_evaluate,
    cmd_export,
    cmd_gather,
    cmd_manifest,
    cmd_phantoms,
    cmd_profiles,
    cmd_run,
    cmd_split,
    cmd_stand_in_weights,
    cmd_train,
    cmd_verify,
)
from brainlib.config import DEFAULT_PROFILE, REAL_DATASET, SPLIT_KINDS, VARIANTS, ConfigError


def _profile_args(p: argparse.ArgumentParser, skip_bad: bool = True) -> None:
    p.add_argument(
        "--profile",
        default=None,
        help="profile name (default: demo, or paper when DATA_DIR is given)",
    )
    p.add_argument("--set", action="append", metavar="FIELD=VALUE", help="override a field")
    if skip_bad:  # only where images are scanned
        p.add_argument(
            "--skip-bad", action="store_true", help="leave out unreadable files, with a warning"
        )


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("data_dir", nargs="?", help="dataset folder in the Kaggle layout")
    _profile_args(p)


def _seed(text: str) -> int:
    """An argparse type: a seed is a whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a seed is a whole number, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a seed is 0 or more, not {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="brainlib", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"brainlib {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the Python traceback when a command fails"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("profiles", help="list the profiles")
    p.set_defaults(func=cmd_profiles)

    p = sub.add_parser("verify", help="scan a dataset and compare it with the manifest")
    _data_args(p)
    p.add_argument("--json", action="store_true", help="print the check as JSON")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("audit", help="exact and near duplicates, and split leakage")
    _data_args(p)
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--max-distance", type=int, default=None, help="pHash Hamming threshold")
    p.add_argument(
        "--seed",
        type=_seed,
        default=None,
        help="seed of the splits audited (default: the profile's)",
    )
    p.add_argument("--flags-dir", default=None, metavar="DIR",
                   help="also write DIR/<split>-duplicates.csv (per image: exact, near or no "
                   "duplicate in train), which `brainlib export` reads")  # fmt: skip
    p.add_argument(
        "--calibrate",
        action="store_true",
        help="add the threshold calibration table (pixel correlation per distance)",
    )
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("split", help="write a split manifest (path, class, sha256, split)")
    _data_args(p)
    p.add_argument(
        "--kind",
        choices=SPLIT_KINDS,
        default=None,
        help="paper: stratified random; grouped: duplicates kept together; given: the "
        "dataset's own Testing/ folder, validation carved from Training/ (default: the profile's)",
    )
    p.add_argument("--seed", type=_seed, default=None, help="split seed (default: the profile's)")
    p.add_argument("--out", required=True, help="CSV file to write")  # fmt: skip
    p.set_defaults(func=cmd_split)

    p = sub.add_parser("train", help="train a model into its run folder (resumes if present)")
    p.add_argument("--data-dir", default=None, help="dataset folder in the Kaggle layout")
    _profile_args(p)
    p.add_argument("--variant", choices=(*VARIANTS, "both"), default="both",
                   help="which model to train (default: both)")  # fmt: skip
    p.add_argument("--runs", default="runs", help="root of the run folders (default: runs)")
    p.add_argument("--seed", type=_seed, default=None, help="training seed (default: profile)")
    p.add_argument("--weights", default=None, help="backbone weights: imagenet, none or a file")
    p.add_argument(
        "--allow-data-mismatch",
        action="store_true",
        help="train on data that differs from the manifest (strict profiles refuse it)",
    )
    p.add_argument("--cell", default=None, metavar="NAME",
                   help="one cell of the profile's grid, e.g. se-paper-seed42 (sets the "
                        "model, split and seed; `brainlib cells` lists them)")  # fmt: skip
    p.add_argument("--stop-after-epochs", type=int, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("cells", help="list the cells (model, split, seed) of a profile's grid")
    _profile_args(p, skip_bad=False)
    p.add_argument("--format", choices=("lines", "json", "matrix"), default="lines",
                   help="lines (one name each), json (a list), or matrix (a GitHub Actions "
                        "matrix: {\"include\": [...]})")  # fmt: skip
    p.set_defaults(func=cmd_cells)

    p = sub.add_parser(
        "gather", help="check run folders trained on many machines and put them into one root"
    )
    p.add_argument("sources", nargs="+", help="runs roots of the jobs (or run folders)")
    _profile_args(p, skip_bad=False)
    p.add_argument("--into", required=True, help="the runs root to gather into")
    p.add_argument("--partial", action="store_true", help="allow cells to be missing")
    p.set_defaults(func=cmd_gather)

    p = sub.add_parser("evaluate", help="predict and score every run of the profile's grid")
    p.add_argument("--data-dir", default=None, help="dataset folder in the Kaggle layout")
    _profile_args(p)
    p.add_argument(
        "--external",
        default=None,
        metavar="FOLDER",
        help="score the runs on another dataset instead (class folders, or Training/ and "
        "Testing/ of which Testing/ is used); writes <run>/external/<name>/",
    )
    p.add_argument(
        "--class-map",
        default=None,
        metavar="FOLDER=CLASS,...",
        help="the external folders' class names, e.g. no_tumor=normal,glioma=glioma_tumor",
    )
    p.add_argument("--name", default=None,
                   help="name of the external test set (default: its folder's name)")  # fmt: skip
    p.add_argument("--runs", default="runs", help="root of the run folders (default: runs)")
    p.add_argument("--partial", action="store_true",
                   help="evaluate the grid's completed runs only")  # fmt: skip
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "analyse",
        help="where the weights are: training-set fit (fit.json), Grad-CAM numbers "
        "(saliency.json) and Figure 5 of every run of the grid",
    )
    p.add_argument("--data-dir", default=None, help="dataset folder in the Kaggle layout")
    _profile_args(p, skip_bad=False)
    p.add_argument("--runs", default="runs", help="root of the run folders (default: runs)")
    p.add_argument("--partial", action="store_true", help="the grid's completed runs only")
    p.add_argument("--force", action="store_true", help="remake what exists")
    p.set_defaults(func=cmd_analyse)

    p = sub.add_parser(
        "export", help="copy the grid's small artifacts (no weights) to results/<profile>/"
    )
    _profile_args(p, skip_bad=False)
    p.add_argument("--runs", default="runs", help="root of the run folders (default: runs)")
    p.add_argument("--out", default="results", help="results root (default: results)")
    p.add_argument("--partial", action="store_true", help="export the grid's completed runs so far")
    p.add_argument("--replace", action="store_true",
                   help="drop the runs committed before (default: add to them, replacing "
                        "runs of the same name)")  # fmt: skip
    p.add_argument("--readme", default=None,
                   help="rewrite this README's results block from the answers (default: "
                        "README.md for the replication profile)")  # fmt: skip
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("run", help="execute the notebooks (papermill) and build the book")
    p.add_argument(
        "--profile",
        default=DEFAULT_PROFILE,
        help=f"profile name (default: {DEFAULT_PROFILE}; `brainlib profiles` lists them)",
    )
    p.add_argument("--data-dir", default=None, help="dataset folder in the Kaggle layout")
    p.add_argument("--weights", default=None, help="backbone weights: imagenet, none or a file")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE", help="override a field")
    p.add_argument("--root", default=".", help="project root (default: .)")
    p.add_argument("--no-book", action="store_true", help="execute the notebooks only")
    p.add_argument("--results", default=None, metavar="DIR",
                   help="the exported runs (brainlib export --out) the Results page reads "
                        "(default: results/real224, the committed grid)")  # fmt: skip
    p.add_argument(
        "--solutions",
        action="store_true",
        help="execute the exercises' solutions too (else shown without output)",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "stand-in-weights",
        help="write seeded random backbone weights in the ImageNet no-top file's layout",
        description="Write a ResNet50V2 no-top weights file (the layout of Keras' "
        "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5) holding seeded random weights, "
        "marked as a stand-in, to rehearse the paper profile without the ImageNet download: "
        "brainlib run --profile paper --weights FILE. Runs and the book say it is a stand-in.",
    )
    p.add_argument("out", help="the .h5 file to write")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the weights (default: 0)")
    p.set_defaults(func=cmd_stand_in_weights)

    p = sub.add_parser("phantoms", help="write the synthetic phantom dataset")
    p.add_argument("out", help="folder to write the four class folders into")
    p.add_argument("--per-class", type=int, default=40, help="images per class (default: 40)")
    p.add_argument("--size", type=int, default=128, help="image side in pixels (default: 128)")
    p.add_argument("--seed", type=_seed, default=42, help="seed of the phantoms (default: 42)")
    p.set_defaults(func=cmd_phantoms)

    p = sub.add_parser("manifest", help=f"write a manifest (as kept for {REAL_DATASET})")
    p.add_argument("data_dir", help="dataset folder in the Kaggle layout")
    p.add_argument("--out", default=None, help="CSV file to write (default: standard output)")
    p.add_argument("--skip-bad", action="store_true",
                   help="leave out unreadable files, with a warning")  # fmt: skip
    p.set_defaults(func=cmd_manifest)
    return parser


_OS_HINTS = {
    errno.ENOSPC: "the disk is full",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}


def describe_error(err: BaseException) -> str:
    """One line naming the file, field or folder and the problem."""
    if isinstance(err, OSError) and not isinstance(err, FileNotFoundError | NotADirectoryError):
        what = _OS_HINTS.get(err.errno, err.strerror or type(err).__name__)
        where = err.filename if err.filename is not None else "a file"
        return f"{where}: {what}" + (
            f" ({err.strerror})" if err.strerror and err.strerror != what else ""
        )
    if isinstance(err, FileNotFoundError | NotADirectoryError) and err.filename is not None:
        return f"{err.filename}: {err.strerror}"
    return str(err) or type(err).__name__


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"brainlib: warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.debug:  # a warning is one line for the user, not a source location
        warnings.formatwarning = _one_line_warning
    try:
        return args.func(args)
    except BrokenPipeError:  # `brainlib cells | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("brainlib: interrupted; a run resumes from its last finished epoch", file=sys.stderr)
        return 130
    except Exception as err:
        if getattr(args, "debug", False):
            raise
        # brainlib's own errors (data, settings, run folders, evaluation, the pipeline) are
        # RuntimeError or ValueError subclasses; with the file system's they are the user's to fix
        from brainlib.data.layout import DataError

        if isinstance(err, ConfigError | DataError | RuntimeError | OSError):
            print(f"brainlib: error: {describe_error(err)}", file=sys.stderr)
            return 2
        print(
            f"brainlib: internal error: {type(err).__name__}: {err} "
            "(run again with --debug for the traceback, and report it)",
            file=sys.stderr,
        )
        return 1
