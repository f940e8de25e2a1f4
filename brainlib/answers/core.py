"""What every answer shares: the :class:`Answer`, the loaded :class:`Grid`, the rule
that chooses runs (:func:`verdict_table`), and the words for models and intervals."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from brainlib import results as res
from brainlib import runs

#: Bootstrap resamples behind every interval the answers print (their Monte Carlo
#: error sets the printed digits: :func:`brainlib.display.decimals`).
RESAMPLES = 10_000
MODEL = {"se": "SE", "base": "base"}
PRIMARY, SECONDARY = "primary", "secondary, unadjusted"


@dataclass
class Answer:
    question: str
    sentence: str
    table: object = None  # a human table (brainlib.display.table), or None
    caveats: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    why: str = ""
    numbers: dict = field(default_factory=dict)
    table_note: str = ""  # read under the table (the page), not in the README's block

    def markdown(self) -> str:
        """The sentence and caveats, then which runs and why (the page's text)."""
        out = [self.sentence, *(f"*Caveat:* {c}" for c in self.caveats)]
        if self.runs:
            out.append(f"*Runs used ({len(self.runs)}):* {self.why}")
        return "\n\n".join(out)

    def show(self) -> Answer:
        """Display the answer in a notebook: its text, then its table."""
        from IPython.display import Markdown, display

        from brainlib.display import shown

        display(Markdown(self.markdown()))
        if self.table is not None:
            display(shown(self.table))
            if self.table_note:
                display(Markdown(self.table_note))
        return self


@dataclass
class Grid:
    """The committed results of one profile, loaded and judged once."""

    root: Path
    frame: object
    verdicts: object
    resamples: int = RESAMPLES

    @classmethod
    def open(cls, root, resamples: int = RESAMPLES) -> Grid:
        root = Path(root)
        frame = res.load(root)
        frame["schedule"] = [res.schedule(root, d) for d in frame["folder"]]
        frame["today"] = [_on_current(root, d) for d in frame["folder"]]  # read once, here
        res.check_metrics(root)  # every accuracy and AUC recomputed from predictions.csv
        return cls(root, frame, verdict_table(frame), resamples)

    def seeds(self, arms) -> list[int]:
        """The seeds whose runs converged in every arm, an arm a ``(model, split)``, and
        were trained on one schedule (:func:`brainlib.results.schedule`): a comparison
        between runs of two schedules would measure the schedules too."""
        return [s for s in self._converged_seeds(arms) if len(self._schedules(arms, s)) == 1]

    def mixed_schedules(self, arms) -> list[int]:
        """The seeds whose runs converged in every arm but on other schedules."""
        return [s for s in self._converged_seeds(arms) if len(self._schedules(arms, s)) > 1]

    def _converged_seeds(self, arms) -> list[int]:
        ok = self.converged()
        found = [set(ok.loc[(ok["model"] == m) & (ok["split"] == s), "seed"]) for m, s in arms]
        return sorted(set.intersection(*found)) if found else []

    def _schedules(self, arms, seed: int) -> set[str]:
        f = self.frame
        return {f.loc[(f["model"] == m) & (f["split"] == s) & (f["seed"] == seed),
                      "schedule"].iloc[0] for m, s in arms}  # fmt: skip

    def left_out(self, *comparisons) -> list[str]:
        """A caveat (or none) naming the runs left out of ``comparisons`` (each a list of
        arms) because the seed's runs were trained on different schedules."""
        names = [runs.run_name(m, s, seed) for arms in comparisons
                 for seed in self.mixed_schedules(arms) for m, s in arms]  # fmt: skip
        if not names:
            return []
        return [f"Left out for training on different schedules (the comparison would "
                f"measure the schedules too; the runs table gives each run's): "
                f"{', '.join(names)}."]  # fmt: skip

    def judged(self):
        """The runs with their convergence verdict (``converged``) and, of the converged
        runs of each model and split, whether they are the one schedule a mean takes
        (``kept``, :meth:`one_schedule`): for the runs figure."""
        f = self.frame.assign(converged=self.verdicts["converged"].to_numpy())
        ok = f[f["converged"]]
        kept = {
            d for _, g in ok.groupby(["model", "split"]) for d in self.one_schedule(g)["folder"]
        }
        return f.assign(kept=f["folder"].isin(kept).to_numpy())

    def one_schedule(self, rows):
        """Of ``rows`` (runs of :attr:`frame`), those trained on one schedule: today's
        (:func:`brainlib.results.on_current_schedule`) where some are, else the schedule
        with the most runs. A mean over them does not mix two schedules."""
        if rows.empty:
            return rows
        best = max(rows.groupby("schedule", sort=False),
                   key=lambda kv: (kv[1]["today"].eq(True).any(), len(kv[1])))  # fmt: skip
        return rows[rows["schedule"] == best[0]]

    def one_schedule_and_rest(self, rows) -> tuple[object, list[str]]:
        """:meth:`one_schedule` of ``rows``, and the names of the runs it leaves out (for
        :func:`one_schedule_caveat`)."""
        kept = self.one_schedule(rows)
        return kept, [run_name(r) for r in rows.drop(kept.index).itertuples()]

    def converged(self, split: str | None = None, model: str | None = None):
        ok = self.frame[self.verdicts["converged"].to_numpy()]
        if split is not None:
            ok = ok[ok["split"] == split]
        return ok if model is None else ok[ok["model"] == model]


def _on_current(root, folder) -> bool | None:
    """Whether a run is on its profile's schedule of today; ``None`` where
    ``profiles.toml`` no longer has the profile (no "today" to hold it to)."""
    from brainlib.config import ConfigError

    try:
        return res.on_current_schedule(root, folder)
    except ConfigError:
        return None


def one_schedule_caveat(left: list[str]) -> list[str]:
    """The caveat (or none) naming the runs :meth:`Grid.one_schedule` left out of a mean."""
    if not left:
        return []
    return [f"Left out so that a mean holds one schedule (the runs table gives each "
            f"run's): {', '.join(left)}."]  # fmt: skip


def side_of_zero(r) -> int:
    """+1 (-1) where an interval lies above (below) zero, 0 where it holds zero or is NaN."""
    return 1 if r["low"] > 0 else -1 if r["high"] < 0 else 0


def run_name(r) -> str:
    return runs.run_name(r.model, r.split, int(r.seed))


def verdict_table(frame):
    """Per run: the convergence rule's verdict from its history, patience and fit.json."""
    import pandas as pd

    rows = []
    for r in frame.itertuples():
        fit = res.fit_of(r.folder)
        v = runs.convergence(
            runs.read_history_rows(r.folder),
            fit["train_accuracy"] if fit else None,
            patience=r.patience,
        )
        rows.append(v)  # fmt: skip
    return pd.DataFrame(rows, index=frame.index)
