"""What the Grad-CAM heatmaps look at, against random heatmaps, and the sanity check."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from brainlib import display as show
from brainlib import runs
from brainlib.answers.core import (
    SECONDARY,
    Answer,
    Grid,
    one_schedule_caveat,
    run_name,  # fmt: skip
)
from brainlib.display import n_of
from brainlib.statistics import t_interval

# ------------------------------------------------------------------- 6. Grad-CAM


#: Below this median rank correlation with the trained model's heatmaps, the heatmaps of a
#: model with re-initialised weights count as changed (Adebayo et al. show the similarity).
CHANGED_BELOW = 0.5


def saliency_table(grid: Grid):
    """Per converged run with a ``saliency.json`` and per heatmap: energy in the brain,
    blank heatmaps, the deletion area and the images it is taken over. The runs are those
    of one schedule (:meth:`Grid.one_schedule`), so a mean over them does not mix two."""
    return _table(grid.one_schedule(_analysed(grid)))


def _table(kept):
    """The rows of :func:`saliency_table` for the runs ``kept`` (rows of ``Grid.frame``)."""
    import pandas as pd

    from brainlib.fileio import read_json

    rows = []
    for r in kept.itertuples():
        path = Path(r.folder) / runs.SALIENCY_JSON
        s = read_json(path)
        for method, d in s["deletion"].items():
            e = s["energy_in_brain"].get(method, {})
            rows.append(
                {
                    "run": run_name(r),
                    "model": r.model,
                    "method": method,
                    "energy": e.get("mean", np.nan),
                    "blank": e.get("blank_heatmaps", 0),
                    "images": s["images"],
                    "deletion_images": s.get("deletion_images", s["images"]),
                    "brain": s["brain_area"]["mean"],
                    "area": d["area"],
                    "curve": dict(zip(d["fraction"], d["accuracy"], strict=True)),
                }
            )
        for stage, v in s.get("randomisation", {}).get("stages", {}).items():
            rows.append({"run": run_name(r), "model": r.model, "method": f"randomised: {stage}",
                         "spearman": v["median_spearman"]})  # fmt: skip
    return pd.DataFrame(rows)


def _analysed(grid: Grid):
    """The converged runs with Grad-CAM numbers (a ``saliency.json``)."""
    ok = grid.converged()
    return ok[[(Path(f) / runs.SALIENCY_JSON).is_file() for f in ok["folder"]]]


def _gap(areas, a: str, b: str):
    """Per run, the deletion area of heatmap ``b`` minus that of ``a`` (positive: ``a``
    lowers accuracy faster), with a t-interval over runs."""
    g = (areas[b] - areas[a]).dropna() if a in areas and b in areas else areas.iloc[:0, 0]
    lo, hi = t_interval(g)
    return {"difference": float(g.mean()) if len(g) else np.nan, "low": lo, "high": hi,
            "runs": len(g)}  # fmt: skip


def saliency(grid: Grid) -> Answer:
    """What the heatmaps look at: energy in the brain, deletion against random heatmaps
    and against random heatmaps inside the brain, blank heatmaps, and the
    model-randomisation sanity check."""
    import pandas as pd

    question = "What do the Grad-CAM heatmaps look at?"
    kept, left = grid.one_schedule_and_rest(_analysed(grid))
    t = _table(kept)
    if t.empty and grid.converged().empty:
        return Answer(question, "Not measured: no run converged.")
    if t.empty:
        return Answer(question, "Not measured yet: no converged run has a `saliency.json` "
                                "(`brainlib analyse`).")  # fmt: skip
    maps = t[t["area"].notna()] if "area" in t else t
    areas = maps.pivot_table(index="run", columns="method", values="area")
    energy = maps.groupby("method")["energy"].mean()
    rows, parts, intervals = [], [], False
    for method in ("gradcam", "gradcam++"):
        if method not in areas:
            continue
        vs_random, vs_brain = _gap(areas, method, "random"), _gap(areas, method, "random_in_brain")
        m = maps[maps["method"] == method]
        intervals |= max(vs_random["runs"], vs_brain["runs"]) > 1
        rows.append({"method": method, "runs": len(m), "energy": 100 * energy[method],
                     "blank": f"{int(m['blank'].sum())} of {int(m['images'].sum())}",
                     "area": m["area"].mean(), "random": _gap_text(vs_random, len(m)),
                     "brain": _gap_text(vs_brain, len(m))})  # fmt: skip
        parts.append(
            f"{method}: {100 * energy[method]:.1f}% of the heatmap inside the brain; "
            f"deletion {_gap_words(vs_random, 'random heatmaps', len(m))}, "
            f"{_gap_words(vs_brain, 'random heatmaps inside the brain', len(m))}"
        )
    brain = 100 * maps["brain"].mean()
    sentence = (
        f"**{n_of(areas.shape[0], 'converged run')}**, the brain covering "
        f"{brain:.1f}% of the image (random heatmaps put "
        f"{100 * energy.get('random', np.nan):.1f}% there): " + "; ".join(parts) + "."
    )
    blank = maps[(maps["method"].isin(["gradcam", "gradcam++"])) & (maps["blank"] > 0)]
    caveats = []
    if not blank.empty:
        worst = blank.sort_values("blank").iloc[-1]
        caveats.append(f"{int(blank['blank'].sum())} heatmaps were blank (zero everywhere; "
                       f"most in {worst['run']}: {int(worst['blank'])} of "
                       f"{int(worst['images'])} "
                       f"{worst['method']}); a blank heatmap orders pixels by noise, so deletion "
                       "curves are taken over the images where no heatmap is blank, where the "
                       "run's saliency.json records them.")  # fmt: skip
    check = t[t["method"].str.startswith("randomised")] if "spearman" in t else t.iloc[:0]
    if not check.empty:
        med = check.groupby("method")["spearman"].mean()
        words = {k.split(": ")[1]: v for k, v in med.items()}
        top = words.get("top+conv5", np.nan)
        verdict = ("the heatmaps changed: they depend on the trained weights" if top < CHANGED_BELOW
                   else "the heatmaps stayed similar: they say little about what the model "
                        "learnt")  # fmt: skip
        checked = n_of(check["run"].nunique(), "run")
        sentence += (f" **Sanity check** (model randomisation, {checked}"
                     f"): after re-initialising the head the median rank correlation with the "
                     f"trained heatmaps is {words.get('top', np.nan):.2f}, with conv5 as well "
                     f"{top:.2f} (random heatmaps: {words.get('random heatmaps', np.nan):.2f}); "
                     f"below {CHANGED_BELOW}, {verdict}.")  # fmt: skip
    else:
        caveats.append(
            "No run has the model-randomisation check yet (runs analysed before it existed)."
        )
    if intervals:  # one run gives a gap but no interval, and no word that reads one
        caveats.append("Intervals: t over runs (each run gives one deletion area); "
                       f"{SECONDARY}, like the page's other secondary intervals: the words "
                       "\"faster\" and \"slower\" read one interval, not a test "
                       "adjusted across the page.")  # fmt: skip
    caveats += one_schedule_caveat(left)
    frame = show.table(
        pd.DataFrame(rows),
        {
            "method": "Heatmap",
            "runs": "Runs",
            "energy": "% inside brain",
            "blank": "Blank",
            "area": "Deletion area",
            "random": "Random − heatmap [95% t, runs]",
            "brain": "Random in brain − heatmap [95% t, runs]",
        },
        {"runs": 0, "energy": 1},
    )
    return Answer(question, sentence, frame, caveats, sorted(areas.index),
                  "every converged run with Grad-CAM numbers (saliency.json), of one "
                  "schedule (today's where it has one)",
                  numbers={"areas": areas, "energy": energy})  # fmt: skip


def _gap_text(g: dict, of: int | None = None) -> str:
    """The gap with its interval; ``of``: the runs the other numbers come from, named
    beside the gap's own count when fewer runs have both heatmaps (older saliency.json
    files lack the in-brain baseline)."""
    if g["runs"] < 2:
        return f"{g['difference']:+.3f} (1 run)" if g["runs"] else "–"
    text = f"{g['difference']:+.3f} {show.bracket(g['low'], g['high'], 3, sign=True)}"
    return text if of is None or g["runs"] == of else f"{text}, {g['runs']} of {of} runs"


def _gap_words(g: dict, against: str, of: int | None = None) -> str:
    if g["runs"] == 0:
        return f"no run measured against {against} yet"
    if g["runs"] < 2:
        return f"not judged against {against} (1 run)"
    if g["low"] > 0:
        word = "lowers accuracy faster than"
    elif g["high"] < 0:
        word = "lowers accuracy slower than"
    else:
        word = "is not shown to differ from"
    return f"{word} {against} ({_gap_text(g, of)})"
