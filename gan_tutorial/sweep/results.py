"""The rows of a sweep and what they say: per-trial means and spreads, a text table, the best
trial and a plot of every seed beside its trial's mean (chapter 6).

A row is one run: its ``trial``, ``seed``, ``config`` (as a dict), its metrics and ``seconds``.
Rows of runs that diverged carry ``"diverged": true`` and NaN metrics; the summaries leave them
out and the table counts them.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from ..stats import mean_std
from .designs import _format

if TYPE_CHECKING:  # pragma: no cover
    import matplotlib.axes

#: Keys of a row that are not metrics.
ROW_KEYS = ("trial", "seed", "config", "seconds")
#: Numbers in a row that describe a run rather than score it: not in a table unless asked for.
NOT_SCORES = ("diverged", "ensemble", "n_modes")


class Summary(NamedTuple):
    """One group's numbers for a metric: its mean and sample standard deviation over ``n`` runs."""

    trial: str
    mean: float
    std: float
    n: int


class Comparison(NamedTuple):
    """A trial's mean minus the base's on one metric, with a 95% bootstrap interval of that
    difference, a two-sided permutation test's p-value, and that p-value after Holm's correction
    for every comparison made in the same call."""

    trial: str
    diff: float
    low: float
    high: float
    p: float
    p_holm: float


def permutation_p(a: Sequence[float], b: Sequence[float], draws: int = 20_000, seed: int = 0) -> float:
    """Two-sided p-value of a permutation test of "a and b come from one distribution", with the
    absolute difference of the means as statistic: exact (every split of the pooled values) when
    there are at most ``draws`` splits, else ``draws`` random splits (seeded)."""
    pooled, n = [*a, *b], len(a)
    observed = abs(math.fsum(a) / n - math.fsum(b) / len(b))
    total = math.fsum(pooled)

    def stat(idx: Sequence[int]) -> float:
        s = math.fsum(pooled[i] for i in idx)
        return abs(s / n - (total - s) / (len(pooled) - n))

    tol = 1e-9 * max(1.0, observed)
    if math.comb(len(pooled), n) <= draws:
        splits = list(itertools.combinations(range(len(pooled)), n))
        return sum(stat(idx) >= observed - tol for idx in splits) / len(splits)
    rng = random.Random(seed)
    hits = sum(stat(rng.sample(range(len(pooled)), n)) >= observed - tol for _ in range(draws))
    return (hits + 1) / (draws + 1)


def bootstrap_interval(
    a: Sequence[float], b: Sequence[float], draws: int = 10_000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(a) - mean(b), each group resampled on its own (seeded)."""
    rng = random.Random(seed)
    diffs = sorted(
        math.fsum(rng.choices(a, k=len(a))) / len(a) - math.fsum(rng.choices(b, k=len(b))) / len(b)
        for _ in range(draws)
    )
    tail = (1 - level) / 2
    return diffs[int(tail * (draws - 1))], diffs[math.ceil((1 - tail) * (draws - 1))]


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down correction of m p-values (the family-wise error stays below alpha)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


class Results:
    """The rows of a sweep, one dict per run (``trial``, ``seed``, ``config``, the metrics, ``seconds``).

    Rows with ``"diverged": true`` are left out of the summaries (their metrics are NaN) and
    counted in the table.
    """

    def __init__(self, rows: Iterable[Mapping[str, Any]]) -> None:
        self.rows: list[dict[str, Any]] = [dict(row) for row in rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        return f"Results({len(self.rows)} rows, {len(self.trials)} trials)"

    @property
    def trials(self) -> list[str]:
        """The trials' names, in the order of their first row."""
        return list(dict.fromkeys(row["trial"] for row in self.rows))

    @property
    def metrics(self) -> list[str]:
        """The metrics the rows hold, in the order they first appear: their numbers and true/false
        values (a mean of those is a share), less :data:`NOT_SCORES` and ``seed`` and ``seconds``."""
        names: dict[str, None] = {}
        for row in self.rows:
            for key, value in row.items():
                if key not in ROW_KEYS + NOT_SCORES and isinstance(value, (int, float)):  # bools too
                    names.setdefault(key)
        return list(names)

    def config(self, trial: str) -> dict[str, Any]:
        """The config (as a dict) of the trial named ``trial``."""
        for row in self.rows:
            if row["trial"] == trial:
                return row["config"]
        raise ValueError(f"no trial named {trial!r}; the trials: {', '.join(self.trials)}")

    def _groups(self, by: str) -> dict[str, list[dict[str, Any]]]:
        groups: dict[str, list[dict[str, Any]]] = {}
        for row in self.rows:
            if by == "trial":
                label = row["trial"]
            elif by in row and by not in ("config", "seconds"):
                label = f"{by}={_format(row[by])}"
            elif by in row["config"]:
                label = f"{by}={_format(row['config'][by])}"
            else:
                raise ValueError(
                    f"cannot group by {by!r}: it is neither 'trial' nor a field of the configs "
                    f"({', '.join(row['config'])})"
                )
            groups.setdefault(label, []).append(row)
        return groups

    def summary(self, metric: str, by: str = "trial") -> list[Summary]:
        """``(trial, mean, std, n)`` of ``metric`` for each trial, in trial order, over its runs that
        did not diverge: ``std`` is the sample standard deviation (0 for one run), ``n`` the runs.

        ``by`` may name a config field instead (``by="lr_D"``): the runs are then grouped by its
        value, across the other fields ("lr_D=0.0004"), to read one axis of a grid.
        """
        if not self.rows:
            return []
        if not any(metric in row for row in self.rows):
            raise ValueError(f"no metric {metric!r} in these rows; they hold: {', '.join(self.metrics)}")
        out = []
        for label, rows in self._groups(by).items():
            values = [float(row[metric]) for row in rows if not row.get("diverged") and metric in row]
            out.append(Summary(label, *mean_std(values), len(values)))
        return out

    def compare(self, metrics: str | Sequence[str], base: str = "base") -> dict[str, list[Comparison]]:
        """Every other trial against ``base`` on each metric: the difference of the means, its 95%
        bootstrap interval and a permutation test's p-value (:func:`permutation_p`), with Holm's
        correction over all the comparisons of this call (trials x metrics), so that the chance
        of calling any null difference an effect stays below the level read."""
        metrics = [metrics] if isinstance(metrics, str) else list(metrics)
        groups = self._groups("trial")
        if base not in groups:
            raise ValueError(f"no trial named {base!r}; the trials: {', '.join(groups)}")

        def values(rows: list[dict[str, Any]], metric: str) -> list[float]:
            return [float(r[metric]) for r in rows if not r.get("diverged") and metric in r]

        raw: list[tuple[str, str, float, float, float, float]] = []
        for metric in metrics:
            b = values(groups[base], metric)
            for name, rows in groups.items():
                a = values(rows, metric)
                if name == base or len(a) < 2 or len(b) < 2:
                    continue
                low, high = bootstrap_interval(a, b)
                diff = math.fsum(a) / len(a) - math.fsum(b) / len(b)
                raw.append((metric, name, diff, low, high, permutation_p(a, b)))
        adjusted = holm([r[5] for r in raw])
        out: dict[str, list[Comparison]] = {m: [] for m in metrics}
        for (metric, name, diff, low, high, p), p_holm in zip(raw, adjusted, strict=True):
            out[metric].append(Comparison(name, diff, low, high, p, p_holm))
        return out

    def best(self, metric: str, lower_is_better: bool = True) -> Summary:
        """The trial with the lowest mean ``metric`` (the highest with ``lower_is_better=False``)."""
        candidates = [s for s in self.summary(metric) if not math.isnan(s.mean)]
        if not candidates:
            raise ValueError(f"no trial has a value of {metric!r} from a run that did not diverge")
        return (min if lower_is_better else max)(candidates, key=lambda s: s.mean)

    def table(self, metrics: Sequence[str] | None = None, digits: int = 3) -> str:
        """A plain-text table: one line per trial, ``mean ± std`` of each metric over its seeds,
        the number of runs and (when any) of diverged runs. ``metrics`` defaults to all of them."""
        metrics = list(metrics) if metrics is not None else self.metrics
        groups = self._groups("trial")
        diverged = {name: sum(bool(r.get("diverged")) for r in rows) for name, rows in groups.items()}
        summaries = {m: {s.trial: s for s in self.summary(m)} for m in metrics} if self.rows else {}
        header = ["trial", *metrics, "runs"] + (["diverged"] if any(diverged.values()) else [])
        lines = []
        for name, rows in groups.items():
            cells = [name]
            for m in metrics:
                s = summaries[m][name]
                cells.append(f"{s.mean:.{digits}g} ± {s.std:.{digits}g}" if s.n else "-")
            cells.append(str(len(rows)))
            if any(diverged.values()):
                cells.append(str(diverged[name]))
            lines.append(cells)
        widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]

        def line(cells: list[str]) -> str:
            first = cells[0].ljust(widths[0])
            return "  ".join([first, *(c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))])

        return "\n".join([line(header), *(line(cells) for cells in lines)])

    def __str__(self) -> str:
        return self.table()

    def plot(
        self, metric: str, ax: matplotlib.axes.Axes | None = None, by: str = "trial"
    ) -> matplotlib.axes.Axes:
        """Each trial's runs as dots, and their mean ± one standard deviation as an error bar."""
        import matplotlib.pyplot as plt  # here, not at import: matplotlib is slow to load

        groups, summaries = self._groups(by), self.summary(metric, by)
        if ax is None:
            _, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(groups) + 1.5), 3.5))
        for i, (s, rows) in enumerate(zip(summaries, groups.values(), strict=True)):
            values = [float(r[metric]) for r in rows if not r.get("diverged") and metric in r]
            n = len(values)  # the runs side by side, within a quarter of the space between trials
            x = [i + 0.25 * (j / (n - 1) - 0.5) if n > 1 else i for j in range(n)]
            first = "" if i == 0 else "_"  # one legend entry for all the trials ("_": none)
            ax.scatter(x, values, s=14, color="0.55", zorder=2, label=f"{first}runs")
            if s.n:
                ax.errorbar(i, s.mean, yerr=s.std, fmt="o", color="tab:blue", capsize=4, zorder=3,
                            label=f"{first}mean ± std")  # fmt: skip
        ax.set_xticks(range(len(summaries)), [s.trial for s in summaries], rotation=30, ha="right")
        ax.set_ylabel(metric)
        ax.legend(fontsize=8)
        return ax
