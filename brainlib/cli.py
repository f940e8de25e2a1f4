"""The ``brainlib`` command line (also ``python -m brainlib``).

Subcommands: ``profiles``, ``verify``, ``audit``, ``split``, ``train``, ``evaluate``,
``analyse``, ``export``, ``run``, ``stand-in-weights``, ``phantoms``, ``manifest``
(``brainlib COMMAND --help`` says what each does). Each data command takes a folder in
the Kaggle layout, or none to use the profile's data (phantoms for ``demo``/``smoke``;
``$BRAINLIB_DATA_DIR`` or a Kaggle download for ``paper``).
"""

from __future__ import annotations

import argparse
import errno
import json
import sys
import warnings
from pathlib import Path

from brainlib import __version__
from brainlib.config import (
    DEFAULT_PROFILE,
    REAL_DATASET,
    SPLIT_KINDS,
    VARIANTS,
    ConfigError,
    load_profile,
    parse_overrides,
    profile_names,
)


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


def _profile(args):
    name = args.profile or ("paper" if getattr(args, "data_dir", None) else DEFAULT_PROFILE)
    return load_profile(name, **parse_overrides(args.set))


def _dataset(args, profile):
    from brainlib.data import load_dataset

    # A folder given on the command line is audited as it is: a mismatch with
    # the manifest is reported, never refused, by the inspection commands.
    return load_dataset(
        profile,
        args.data_dir,
        on_bad="skip" if args.skip_bad else "raise",
        allow_mismatch=True,
    )


def cmd_profiles(args) -> int:
    for name in profile_names():
        p = load_profile(name)
        print(f"{name:8s} {p.description}")
    return 0


def cmd_verify(args) -> int:
    from brainlib.data import class_counts

    profile = _profile(args)
    ds = _dataset(args, profile)
    out = {
        "root": str(ds.root),
        "images": len(ds.records),
        "classes": class_counts(ds.records),
        "manifest_sha256": ds.manifest_sha256,
        "manifest_check": ds.check.to_dict() if ds.check else None,
    }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"{out['root']}: {out['images']} images {out['classes']}")
        print(ds.check.summary() if ds.check else "no manifest kept for this dataset")
    return 0 if (ds.check is None or ds.check.ok) else 1


def cmd_audit(args) -> int:
    from brainlib.data.audit import audit_report, distance_calibration, index_duplicates
    from brainlib.data.splits import make_split

    profile = _profile(args)
    ds = _dataset(args, profile)
    dist = args.max_distance if args.max_distance is not None else profile.near_duplicate_distance
    seed = args.seed if args.seed is not None else profile.seed
    index = index_duplicates(ds.records, dist, progress=not args.json)
    splits = {
        kind: make_split(ds.records, kind, seed, profile.split_fractions, dist, index)
        for kind in ("paper", "grouped", "dedup")
    }
    report = {"root": str(ds.root), **audit_report(index, splits)}
    if args.flags_dir:
        from brainlib.data.audit import write_duplicate_flags

        written = write_duplicate_flags(args.flags_dir, index, splits)
        print(f"duplicate flags: {', '.join(map(str, written))}", file=sys.stderr)
    if args.calibrate:
        report["calibration"] = distance_calibration(ds.records, index.fingerprints)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    ex, near = report["exact"], report["near"]
    print(f"{report['images']} images in {report['root']}")
    print(
        f"exact duplicates: {ex['groups']} groups, {ex['files_in_groups']} files "
        f"({ex['redundant_files']} redundant), {ex['mixed_label_groups']} with mixed labels"
    )
    print(
        f"near duplicates (pHash distance <= {dist}): {near['groups']} groups, "
        f"{near['files_in_groups']} files, {near['pairs']} pairs, "
        f"{near['cross_label_pairs']} pairs with different labels"
    )
    for kind, leak in report["splits"].items():
        for sub in ("val", "test"):
            s = leak[sub]
            print(
                f"{kind} split, {sub}: {s['with_exact_duplicate_in_train']}/{s['images']} "
                f"with an exact and {s['with_near_duplicate_in_train']}/{s['images']} with a "
                "near duplicate in train"
            )
    return 0


def cmd_split(args) -> int:
    from brainlib.data.splits import make_split, split_summary, write_split_csv

    profile = _profile(args)
    ds = _dataset(args, profile)
    seed = args.seed if args.seed is not None else profile.seed
    kind = args.kind or profile.split
    assignment = make_split(
        ds.records, kind, seed, profile.split_fractions, profile.near_duplicate_distance
    )
    path = write_split_csv(args.out, ds.records, assignment)
    summary = split_summary(ds.records, assignment)
    print(json.dumps({"out": str(path), "kind": kind, "seed": seed, "counts": summary}, indent=2))
    return 0


def cmd_train(args) -> int:
    from brainlib.training import train

    profile = _profile(args)
    variants = VARIANTS if args.variant == "both" else (args.variant,)
    for variant in variants:
        result = train(
            profile,
            variant,
            runs_root=args.runs,
            data_dir=args.data_dir,
            seed=args.seed,
            weights=args.weights,
            allow_mismatch=args.allow_data_mismatch,
            skip_bad=args.skip_bad,
            verbose=1 if sys.stdout.isatty() else 2,
            stop_after_epochs=args.stop_after_epochs,
        )
        last = result.history[-1] if result.history else {}
        print(
            f"{variant}: {result.folder} ({len(result.history)} epochs, "
            f"resumed after {result.resumed_from}; last val_accuracy "
            f"{last.get('val_accuracy', float('nan')):.4f})"
        )
    return 0


def cmd_run(args) -> int:
    from brainlib.pipeline import PipelineError, run

    overrides = parse_overrides(args.set)
    load_profile(args.profile, **overrides)  # fail early on a bad profile or field
    try:
        html = run(
            args.profile,
            root=args.root,
            data_dir=args.data_dir,
            weights=args.weights,
            overrides=overrides,
            book=not args.no_book,
        )
    except PipelineError as err:
        print(f"brainlib run: {err}", file=sys.stderr)
        return 1
    if html:
        print(f"book: {html / 'index.html'}")
    return 0


def cmd_stand_in_weights(args) -> int:
    from brainlib.models import write_stand_in_weights

    path = write_stand_in_weights(args.out, seed=args.seed)
    print(f"stand-in backbone weights (random, seed {args.seed}, not ImageNet): {path}")
    return 0


def cmd_evaluate(args) -> int:
    profile = _profile(args)
    if args.external:
        return _evaluate_external(args, profile)
    if args.skip_bad or args.class_map or args.name:
        raise ConfigError("--skip-bad, --class-map and --name apply to --external images only")
    from brainlib.evaluation import evaluate_grid

    grid = evaluate_grid(profile, args.runs, args.data_dir, partial=args.partial)
    for (split, seed, variant), m in grid.items():
        print(
            f"{variant}-{split}-seed{seed}: accuracy {m['accuracy']:.4f}, "
            f"macro AUC {m['auc_macro']:.4f} ({m['n_test']} test images)"
        )
    return 0


def cmd_analyse(args) -> int:
    from brainlib.analysis import analyse_grid

    profile = _profile(args)
    for (split, seed, variant), a in analyse_grid(
        profile, args.runs, args.data_dir, partial=args.partial, force=args.force
    ).items():
        fit, sal = a["fit"], a["saliency"]
        energy = ", ".join(f"{m} {e['mean']:.3f}" for m, e in sal["energy_in_brain"].items())
        area = ", ".join(f"{m} {d['area']:.3f}" for m, d in sal["deletion"].items())
        brain = sal["brain_area"]["mean"]
        print(f"{variant}-{split}-seed{seed}: training accuracy (best weights, inference) "
              f"{fit['train_accuracy']:.4f} of {fit['n_train']}; heatmap energy in the brain "
              f"{energy} (brain area {brain:.3f}); deletion area {area}")  # fmt: skip
    return 0


def _evaluate_external(args, profile) -> int:
    from brainlib.external import evaluate_grid_external

    results = evaluate_grid_external(
        profile, args.runs, args.external, args.class_map, args.name, args.data_dir,
        on_bad="skip" if args.skip_bad else "raise", partial=args.partial,
    )  # fmt: skip
    overlaps = {}
    for (split, seed, variant), m in results.items():
        ext = m["external"]
        print(
            f"{variant}-{split}-seed{seed} on {ext['name']} ({ext['folder']}/): accuracy "
            f"{m['accuracy']:.4f}, macro AUC {m['auc_macro']:.4f} ({m['n_test']} images) -> "
            f"external/{ext['name']}/"
        )
        overlaps[split] = m["overlap_with_training"]
    for split, o in overlaps.items():
        line = (
            f"overlap with the {split} split's training images: {o['exact_duplicates_of_training']}"
            f" of {o['images']} exact and {o['near_duplicates_of_training']} near duplicates "
            f"(pHash distance <= {o['max_distance']})"
        )
        if o["near_duplicates_of_training"]:
            line += ": a test set that overlaps training is not external, e.g. " + ", ".join(
                o["examples"]
            )
        print(line, file=sys.stderr if o["near_duplicates_of_training"] else sys.stdout)
    return 0


def draw_replication_figure(root):
    """``<root>/replication_runs.png``: every exported run's test accuracy (README, book)."""
    from brainlib import plots, results

    fig = plots.replication_runs(results.load(root))
    return plots.save(fig, root, "replication_runs")[0]


def cmd_export(args) -> int:
    from brainlib import answers
    from brainlib.results import REPLICATION_PROFILE, check_metrics, export

    profile = _profile(args)
    out = export(args.runs, profile, args.out, partial=args.partial, replace=args.replace)
    print(f"{check_metrics(out)} runs -> {out}")
    print(f"figure: {draw_replication_figure(out)}")
    readme = Path(args.readme) if args.readme else None
    if readme is None and profile.name == REPLICATION_PROFILE and Path("README.md").is_file():
        readme = Path("README.md")
    if readme is not None:
        block = answers.readme_block(answers.Grid.open(out))
        changed = answers.write_readme_block(readme, block)
        print(f"{readme}: results block {'rewritten' if changed else 'unchanged'}")
    return 0


def cmd_phantoms(args) -> int:
    from brainlib.data.phantoms import write_phantoms

    root = write_phantoms(args.out, args.per_class, args.size, args.seed)
    print(root)
    return 0


def cmd_manifest(args) -> int:
    from brainlib.data.layout import scan_dataset
    from brainlib.data.manifest import manifest_text
    from brainlib.fileio import atomic_write_text

    records = scan_dataset(args.data_dir, on_bad="skip" if args.skip_bad else "raise")
    text = manifest_text(records)
    if args.out:
        atomic_write_text(args.out, text)
        print(f"{len(records)} files -> {args.out}")
    else:
        sys.stdout.write(text)
    return 0


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
    p.add_argument("--stop-after-epochs", type=int, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_train)

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
