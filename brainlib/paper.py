"""The paper's reported numbers, read from ``paper_results.toml``.

One data file, transcribed from Huang et al. (2025), is the only place these
numbers live; tables in the book put them beside the replication's values.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

from brainlib.config import CLASSES

RESULTS_FILE = Path(__file__).with_name("paper_results.toml")
METRICS = ("precision", "recall", "f1", "auc", "accuracy")


@cache
def reported() -> dict:
    """The whole data file as a dict."""
    with RESULTS_FILE.open("rb") as fh:
        return tomllib.load(fh)


def table(variant: str):
    """Table 1 (``"se"``) or Table 2 (``"base"``) as a DataFrame, classes then ``overall``."""
    import pandas as pd

    data = reported()[variant]
    rows = {cls: {m: data[cls].get(m) for m in METRICS} for cls in CLASSES}
    rows["overall"] = {m: data["overall"].get(m) for m in METRICS}
    return pd.DataFrame.from_dict(rows, orient="index")[list(METRICS)]


def headline(variant: str) -> dict[str, float]:
    """The abstract's overall accuracy (e.g. 0.984) and AUC (e.g. 0.999)."""
    o = reported()[variant]["overall"]
    return {"accuracy": o["accuracy_text"], "auc": o["auc"]}


def implied_test_counts() -> dict[str, int]:
    """Per-class test images implied by a 10% split of the class sizes (309 in all)."""
    return {cls: round(0.1 * reported()["dataset"][cls]) for cls in CLASSES}


def reported_p_values() -> dict[str, float]:
    return dict(reported()["ztest"]["p"])
