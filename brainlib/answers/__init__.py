"""The questions the results page answers, each a function from the committed results.

An :class:`Answer` holds what the page shows for one question: a sentence computed
from the numbers (so the text cannot disagree with them), a table with human headers,
its caveats, and the runs it used with the reason they were chosen. Every choice of
runs, seeds and splits is made here, and only here: a run enters an answer when it
meets the convergence rule (:func:`brainlib.runs.convergence`), and a comparison uses
the seeds that all of its arms share. The page (``notebooks/07_replication.py``) and
the README's results block (:func:`readme_block`) show the same answers.

Multiplicity: three intervals are primary (SE - base in accuracy on the paper's split;
the leakage effect of each model). Every other interval on the page is secondary and
unadjusted, and its table says so.
"""

from __future__ import annotations

from pathlib import Path

from brainlib import results as res
from brainlib.answers.core import PRIMARY, RESAMPLES, SECONDARY, Answer, Grid, verdict_table
from brainlib.answers.external import external
from brainlib.answers.leakage import leakage, split_difference
from brainlib.answers.models import (
    convergence,
    distance_from_paper,
    paper_difference,
    se_vs_base,
    setup,
    weights_caveat,
)
from brainlib.answers.saliency import CHANGED_BELOW, saliency, saliency_table
from brainlib.display import n_of

__all__ = [
    "CHANGED_BELOW",
    "PRIMARY",
    "QUESTIONS",
    "RESAMPLES",
    "SECONDARY",
    "Answer",
    "Grid",
    "all_answers",
    "convergence",
    "distance_from_paper",
    "external",
    "figures_run",
    "leakage",
    "paper_difference",
    "readme_block",
    "saliency",
    "saliency_table",
    "se_vs_base",
    "setup",
    "split_difference",
    "verdict_table",
    "weights_caveat",
    "write_readme_block",
]

# ------------------------------------------------------------------ the page, whole


def figures_run(grid: Grid, model: str) -> Path | None:
    """The run whose Figures 1-5 the page draws: the converged paper-split run of
    ``model`` with the lowest seed (``None`` when there is none)."""
    ok = grid.converged("paper", model).sort_values("seed")
    return None if ok.empty else Path(ok["folder"].iloc[0])


QUESTIONS = (setup, convergence, se_vs_base, leakage, split_difference, external, saliency,
             distance_from_paper)  # fmt: skip


def all_answers(grid: Grid) -> list[Answer]:
    """Every question's answer, in the page's order."""
    return [q(grid) for q in QUESTIONS]


README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


def readme_block(grid: Grid, answers: list[Answer] | None = None) -> str:
    """The README's results block: each answer's sentence (and caveats), from the answers."""
    answers = all_answers(grid) if answers is None else answers
    body = "\n\n".join(f"**{a.question}** {a.markdown()}" for a in answers)
    head = (
        f"Computed by `brainlib export` from `{res.RESULTS_DIR}/{grid.root.name}` "
        f"({n_of(len(grid.frame), 'committed run')}; every number and sentence below comes "
        "from `brainlib.answers`, as on the book's results page)."
    )
    return f"{README_START}\n{head}\n\n{body}\n{README_END}"


def write_readme_block(readme: Path, block: str) -> bool:
    """Replace the README's results block (between the markers) with ``block``; returns
    whether the file changed. A README without the markers is refused."""
    text = readme.read_text(encoding="utf-8")
    if README_START not in text or README_END not in text:
        raise res.ResultsError(f"{readme} has no results block ({README_START} ... {README_END})")
    new = text[: text.index(README_START)] + block + text[text.index(README_END)
                                                          + len(README_END):]  # fmt: skip
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return new != text
