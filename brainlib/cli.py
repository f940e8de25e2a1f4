"""The ``brainlib`` command line (also ``python -m brainlib``).

Subcommands: ``profiles``, ``verify``, ``audit``, ``split``, ``train``, ``run``, ``phantoms``,
``manifest``. Each data command takes a folder in the Kaggle layout, or none
to use the profile's data (phantoms for ``demo``/``smoke``;
``$BRAINLIB_DATA_DIR`` or a Kaggle download for ``paper``).
"""

from __future__ import annotations

import argparse
import json
import sys

from brainlib import __version__
from brainlib.config import (
    DEFAULT_PROFILE,
    REAL_DATASET,
    VARIANTS,
    ConfigError,
    load_profile,
    parse_overrides,
    profile_names,
)


def _profile_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--profile",
        default=None,
        help="profile name (default: demo, or paper when DATA_DIR is given)",
    )
    p.add_argument("--set", action="append", metavar="FIELD=VALUE", help="override a field")
    p.add_argument("--skip-bad", action="store_true", help="leave out unreadable files")


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
        for kind in ("paper", "grouped")
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


def cmd_evaluate(args) -> int:
    from brainlib.evaluation import evaluate_grid

    profile = _profile(args)
    for (split, seed, variant), m in evaluate_grid(profile, args.runs, args.data_dir).items():
        print(
            f"{variant}-{split}-seed{seed}: accuracy {m['accuracy']:.4f}, "
            f"macro AUC {m['auc_macro']:.4f} ({m['n_test']} test images)"
        )
    return 0


def draw_replication_figure(root):
    """``<root>/replication_runs.png``: every exported run's test accuracy (README, book)."""
    from brainlib import plots, replication

    fig = plots.replication_runs(replication.load(root))
    return plots.save(fig, root, "replication_runs")[0]


def cmd_export(args) -> int:
    from brainlib.replication import check_metrics, export

    profile = _profile(args)
    out = export(args.runs, profile, args.out)
    print(f"{check_metrics(out)} runs -> {out}")
    print(f"figure: {draw_replication_figure(out)}")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="brainlib", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"brainlib {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("profiles", help="list the profiles")
    p.set_defaults(func=cmd_profiles)

    p = sub.add_parser("verify", help="scan a dataset and compare it with the manifest")
    _data_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("audit", help="exact and near duplicates, and split leakage")
    _data_args(p)
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--max-distance", type=int, default=None, help="pHash Hamming threshold")
    p.add_argument(
        "--seed", type=int, default=None, help="seed of the splits audited (default: the profile's)"
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
    p.add_argument("--kind", choices=("paper", "grouped"), default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", required=True, help="CSV file to write")
    p.set_defaults(func=cmd_split)

    p = sub.add_parser("train", help="train a model into its run folder (resumes if present)")
    p.add_argument("--data-dir", default=None, help="dataset folder in the Kaggle layout")
    _profile_args(p)
    p.add_argument("--variant", choices=(*VARIANTS, "both"), default="both",
                   help="which model to train (default: both)")  # fmt: skip
    p.add_argument("--runs", default="runs", help="root of the run folders (default: runs)")
    p.add_argument("--seed", type=int, default=None, help="training seed (default: profile)")
    p.add_argument("--weights", default=None, help="backbone weights: imagenet, none or a file")
    p.add_argument("--allow-data-mismatch", action="store_true")
    p.add_argument("--stop-after-epochs", type=int, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="predict and score every run of the profile's grid")
    p.add_argument("--data-dir", default=None, help="dataset folder in the Kaggle layout")
    _profile_args(p)
    p.add_argument("--runs", default="runs", help="root of the run folders (default: runs)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "export", help="copy the grid's small artifacts (no weights) to results/<profile>/"
    )
    _profile_args(p)
    p.add_argument("--runs", default="runs", help="root of the run folders (default: runs)")
    p.add_argument("--out", default="results", help="results root (default: results)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("run", help="execute the notebooks (papermill) and build the book")
    p.add_argument("--profile", default=DEFAULT_PROFILE)
    p.add_argument("--data-dir", default=None, help="dataset folder in the Kaggle layout")
    p.add_argument("--weights", default=None, help="backbone weights: imagenet, none or a file")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE", help="override a field")
    p.add_argument("--root", default=".", help="project root (default: .)")
    p.add_argument("--no-book", action="store_true", help="execute the notebooks only")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("phantoms", help="write the synthetic phantom dataset")
    p.add_argument("out")
    p.add_argument("--per-class", type=int, default=40)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(func=cmd_phantoms)

    p = sub.add_parser("manifest", help=f"write a manifest (as kept for {REAL_DATASET})")
    p.add_argument("data_dir")
    p.add_argument("--out", default=None)
    p.add_argument("--skip-bad", action="store_true")
    p.set_defaults(func=cmd_manifest)
    return parser


def main(argv: list[str] | None = None) -> int:
    from brainlib.data.layout import DataError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (DataError, ConfigError, FileNotFoundError, RuntimeError) as err:
        print(f"brainlib: error: {err}", file=sys.stderr)
        return 2
