"""How the book shows numbers: intervals to the digits they carry, tables a reader reads.

- :func:`interval` prints a difference and its interval with as many decimals as the
  interval's Monte Carlo error allows (:func:`decimals`): an endpoint printed to a digit
  that a re-run of the bootstrap with another seed would change says more than it knows;
- :func:`table` turns a frame of numbers into one with human headers and formatted
  cells (no ``NaN``, no ``14.000000``), narrow enough for the book's text column;
- :func:`glue` is myst-nb's ``glue`` where the book stack is installed (Colab without
  the ``book`` extra shows the value in place instead).
"""

from __future__ import annotations

import math


def decimals(mc_error: float, scale: float = 100.0, most: int = 3) -> int:
    """The decimals to print a bootstrap endpoint with: the most (up to ``most``) whose
    last digit is larger than twice the endpoint's Monte Carlo error (on the printed
    scale, ``scale`` x the value), so that a re-run with another seed leaves it within
    one unit of the last digit. An unknown error gives one decimal."""
    if mc_error is None or not math.isfinite(mc_error):
        return 1 if scale == 100 else 3
    err = 2 * abs(mc_error) * scale
    for d in range(most, -1, -1):
        if err < 10.0**-d:
            return d
    return 0


def signed(x: float, digits: int) -> str:
    return f"{x:+.{digits}f}"


def interval(r: dict, scale: float = 100.0, unit: str = " points") -> str:
    """``+2 points [-1, +5]``: a difference ``r["difference"]`` with its interval
    (``low``, ``high``), to the digits that ``r["mc_error"]`` allows. ``scale`` 100 and
    the unit "points" for proportions; 1 and no unit for AUCs."""
    lo, hi = r["low"], r["high"]
    finite = math.isfinite(lo) and math.isfinite(hi)
    d = decimals(r.get("mc_error") if finite else None, scale)  # None: the default digits
    if not finite:
        return f"{signed(scale * r['difference'], d)}{unit} (no interval)"
    return (f"{signed(scale * r['difference'], d)}{unit} "
            f"[{signed(scale * lo, d)}, {signed(scale * hi, d)}]")  # fmt: skip


def bracket(lo: float, hi: float, digits: int, scale: float = 1.0, sign: bool = False) -> str:
    """``[0.91, 0.95]`` (or signed); an en dash where there is no interval."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "–"
    f = (lambda v: f"{scale * v:+.{digits}f}") if sign else (lambda v: f"{scale * v:.{digits}f}")
    return f"[{f(lo)}, {f(hi)}]"


def n_of(k: int, word: str) -> str:
    return f"{k} {word}" + ("" if k == 1 else "s")


def listing(items) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    items = [str(i) for i in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def cell(value, digits: int = 3) -> str:
    """One table cell: integers as integers, floats to ``digits``, missing as a dash."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and digits == 0):
        return f"{int(value):,}"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(frame, headers: dict[str, str], digits: dict[str, int] | None = None):
    """``frame`` with only the columns of ``headers``, renamed to their human headers,
    each cell formatted by :func:`cell` (``digits`` per column, default 3)."""
    import pandas as pd

    digits = digits or {}
    return pd.DataFrame({
        label: [cell(v.item() if hasattr(v, "item") else v, digits.get(col, 3))
                for v in frame[col]]
        for col, label in headers.items()
    })  # fmt: skip


def shown(frame):
    """A human table as the book shows it: no row numbers."""
    return frame.style.hide(axis="index")


def markdown_table(frame) -> str:
    """A human table as Markdown (the README)."""
    head = "| " + " | ".join(frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    rows = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


def glue(name: str, value, display: bool = False) -> None:
    """myst-nb's ``glue`` (the book's inline numbers and figures) where the book stack is
    installed; elsewhere (Colab without the ``book`` extra) the value is shown in place."""
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        from IPython.display import display as show

        show(value)
        _close(value)
        return
    myst_glue(name, value, display=display)
    _close(value)


def _close(value) -> None:
    """Close a glued Matplotlib figure: left open, the inline backend would show it again
    at the end of the cell, and the page would carry every figure twice."""
    from matplotlib.figure import Figure

    if isinstance(value, Figure):
        import matplotlib.pyplot as plt

        plt.close(value)
