"""What each ``brainlib`` subcommand does (:mod:`brainlib.cli` parses the command line).

Each ``cmd_*`` takes the parsed arguments, prints what it made and returns the exit
status; brainlib's errors propagate to :func:`brainlib.cli.main`, which prints them
in one line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from brainlib.config import (
    DEFAULT_PROFILE,
    VARIANTS,
    ConfigError,
    load_profile,
    parse_overrides,
    profile_names,
)


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
    seed = args.seed
    if args.cell:  # one cell of the grid: its model, split and seed
        from brainlib.grid import parse_cell

        cell = parse_cell(profile, args.cell)
        if args.variant != "both" or args.seed is not None:
            raise ConfigError("--cell names the model and seed: leave out --variant and --seed")
        profile, variants, seed = profile.replace(split=cell.split), (cell.variant,), cell.seed
    for variant in variants:
        result = train(
            profile,
            variant,
            runs_root=args.runs,
            data_dir=args.data_dir,
            seed=seed,
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


def cmd_cells(args) -> int:
    import json

    from brainlib import grid

    profile = _profile(args)
    if args.format == "matrix":
        print(grid.matrix(profile))
    elif args.format == "json":
        print(json.dumps([c.name for c in grid.cells(profile)]))
    else:
        for cell in grid.cells(profile):
            print(cell.name)
    return 0


def cmd_gather(args) -> int:
    from brainlib import grid

    profile = _profile(args)
    gathered = grid.gather(args.sources, profile, args.into, partial=args.partial)
    print(f"{len(gathered)} runs of profile {profile.name} in {args.into}/{profile.name}/; next: "
          f"brainlib evaluate --profile {profile.name} --runs {args.into}"
          + (" --partial" if args.partial else ""))  # fmt: skip
    return 0


def cmd_run(args) -> int:
    from brainlib.workflow import PipelineError, run

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
            solutions=args.solutions,
            results_dir=args.results,
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
    from brainlib.fit_and_saliency import analyse_grid

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


def _draw_replication_figure(grid):
    """``<root>/replication_runs.png``: every exported run's test accuracy, the runs that
    miss the convergence rule hollow (README, book); ``grid``: the opened export."""
    from brainlib import plots

    fig = plots.replication_runs(grid.judged())
    return plots.save(fig, grid.root, "replication_runs")[0]


def cmd_export(args) -> int:
    from brainlib import answers
    from brainlib.results import REPLICATION_PROFILE, export

    profile = _profile(args)
    out = export(args.runs, profile, args.out, partial=args.partial, replace=args.replace)
    grid = answers.Grid.open(out)  # checks every run's metrics against its predictions
    print(f"{len(grid.frame)} runs -> {out}")
    print(f"figure: {_draw_replication_figure(grid)}")
    readme = Path(args.readme) if args.readme else None
    if readme is None and profile.name == REPLICATION_PROFILE and Path("README.md").is_file():
        readme = Path("README.md")
    if readme is not None:
        block = answers.readme_block(grid)
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
