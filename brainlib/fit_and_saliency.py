"""What a trained run is judged by beyond its test predictions, made where its weights are.

Weights never leave the machine that trained them (``results/`` holds no weights),
so whatever needs the model is computed beside it and saved as a small artifact
that :func:`brainlib.replication.export` carries:

- ``fit.json``: the best weights' accuracy on the training images in inference mode
  (:func:`brainlib.evaluation.fit_accuracy`), which the convergence rule reads;
- ``saliency.json``: what the Grad-CAM heatmaps look at, in numbers
  (:func:`brainlib.gradcam.saliency_summary`);
- ``figures/figure5_gradcam.jpg``: the paper's Figure 5 for this run, a correct and a
  wrong test image of every class where there is one (JPEG at 100 dpi: about a tenth
  of the PNG, for a grid whose every run commits one).
"""

from __future__ import annotations

from pathlib import Path

from brainlib import evaluation, gradcam, plots, runs
from brainlib.fileio import atomic_write_json, read_json

FIGURE5 = "figure5_gradcam"


def analyse_run(folder: str | Path, data_dir: str | Path | None = None, seed: int = 0,
                force: bool = False) -> dict:  # fmt: skip
    """``fit.json``, ``saliency.json`` and Figure 5 of a completed, evaluated run.

    Each is made once (``force`` remakes them); returns ``{"fit": ..., "saliency": ...}``.
    """
    folder = Path(folder)
    fit = evaluation.fit_accuracy(folder, data_dir, force=force)
    out = folder / runs.SALIENCY_JSON
    jpg = folder / runs.FIGURES / f"{FIGURE5}.jpg"
    if out.is_file() and jpg.is_file() and not force:
        return {"fit": fit, "saliency": read_json(out)}
    frame = evaluation.read_predictions(folder)
    root = evaluation.checked_data_root(folder, evaluation.subset_rows(folder, "test"), data_dir)
    model = runs.load_trained_model(folder, float32=True)  # scipy upsamples the maps
    summary = gradcam.saliency_summary(model, frame, root, seed=seed)
    meta = runs.read_meta(folder)
    atomic_write_json(out, {**runs.identity(meta), **summary})
    variant = meta["variant"]
    items = gradcam.gallery_items(model, frame, root, gradcam.pick_gallery(frame, 1, seed))
    title = f"Figure 5. Grad-CAM and Grad-CAM++: {plots.MODEL_LABEL[variant]}"
    fig = plots.gradcam_figure(items, title)
    jpg.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(jpg, dpi=100, bbox_inches="tight", pil_kwargs={"quality": 85})
    return {"fit": fit, "saliency": summary}


def analyse_grid(profile, runs_root: str | Path, data_dir: str | Path | None = None,
                 partial: bool = False, force: bool = False) -> dict:  # fmt: skip
    """:func:`analyse_run` for every (completed, with ``partial``) run of the profile's grid."""
    from brainlib.data import resolve_data_dir

    data_dir = data_dir if data_dir is not None else resolve_data_dir(profile)
    out = {}
    for key, folder in runs.grid_folders(runs_root, profile, partial).items():
        evaluation.evaluate_run(folder, profile.bootstrap_resamples, profile.seed, data_dir)
        out[key] = analyse_run(folder, data_dir, seed=profile.seed, force=force)
    return out
