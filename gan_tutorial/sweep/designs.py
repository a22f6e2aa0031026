"""Designs: the lists of trials a sweep runs, and the seeds it runs each one with (chapter 6).

A trial is a name and a config, a dataclass such as :class:`~gan_tutorial.config.TrainConfig`
or :class:`~gan_tutorial.config.ToyConfig`. Three ways to make a list of them from a ``base``
config:

* :func:`grid` - the Cartesian product of a few axes, ``grid(base, lr_D=[2e-4, 4e-4], k=[1, 2])``:
  four trials, every combination;
* :func:`one_at_a_time` - the base, then each axis varied alone from it: the design that
  measures what each knob does by itself (its trials differ from the base in one field);
* :func:`random_search` - ``n`` points drawn from a space of lists and ranges (log-uniform
  for learning rates), reproducible from a seed: better than a grid when only a few of many
  axes matter (Bergstra and Bengio 2012).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Trial:
    """One setting of a sweep: a readable ``name`` ("lr_D=0.0004,k=2", "base") and its ``config``."""

    name: str
    config: Any


def _check_base(base: Any) -> list[str]:
    """The field names of ``base``, which must be a dataclass instance."""
    if not dataclasses.is_dataclass(base) or isinstance(base, type):
        raise ValueError(
            f"base must be a config instance (a dataclass such as TrainConfig() or ToyConfig()), got {base!r}"
        )
    return [f.name for f in dataclasses.fields(base)]


def _format(value: Any) -> str:
    """A value as it appears in a trial's name: floats in their shortest exact form (0.0004, 1e-05),
    strings bare, containers as JSON."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def _name(changes: Mapping[str, Any]) -> str:
    return ",".join(f"{key}={_format(value)}" for key, value in changes.items()) or "base"


def _trial(base: Any, changes: Mapping[str, Any]) -> Trial:
    """``base`` with ``changes`` applied (``dataclasses.replace``, so the config checks its values)."""
    name = _name(changes)
    try:
        return Trial(name, dataclasses.replace(base, **changes))
    except (ValueError, TypeError) as err:
        raise ValueError(f"trial {name}: {err}") from err


def _check_fields(base: Any, names: Iterable[str]) -> None:
    """Every name in ``names`` is a field of the config ``base``."""
    fields = _check_base(base)
    unknown = [name for name in names if name not in fields]
    if unknown:
        raise ValueError(
            f"{type(base).__name__} has no field {', '.join(unknown)}; its fields: {', '.join(fields)}"
        )


def _check_axes(base: Any, axes: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Each axis as a list of distinct values, its name checked against ``base``'s fields."""
    _check_fields(base, axes)
    checked = {}
    for name, values in axes.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            raise ValueError(
                f"axis {name} must be a list of values, got {values!r}; write {name}=[{values!r}]"
            )
        values = list(values)
        if not values:
            raise ValueError(f"axis {name} lists no values: give at least one")
        names = [_format(v) for v in values]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"axis {name} lists {', '.join(twice)} more than once: trials must differ")
        checked[name] = values
    return checked


def _check_seeds(seeds: Iterable[int]) -> list[int]:
    """The seeds every trial runs with: at least one, distinct, non-negative integers."""
    seeds = list(seeds)
    if not seeds:
        raise ValueError("give at least one seed")
    if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise ValueError(f"seeds must be non-negative integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds!r}")
    return seeds


def grid(base: Any, **axes: Sequence[Any]) -> list[Trial]:
    """Every combination of the axes' values, applied to ``base`` with ``dataclasses.replace``.

    ``grid(TrainConfig(), lr_D=[2e-4, 4e-4], k=[1, 2])`` gives four trials named
    "lr_D=0.0002,k=1", "lr_D=0.0002,k=2", "lr_D=0.0004,k=1" and "lr_D=0.0004,k=2" (the last
    axis varies fastest); without axes, the base alone, named "base". A field ``base`` does not
    have, or a value its config refuses, is a ``ValueError``.
    """
    axes = _check_axes(base, axes)
    names = list(axes)
    return [_trial(base, dict(zip(names, combo, strict=True))) for combo in itertools.product(*axes.values())]


def one_at_a_time(base: Any, **axes: Sequence[Any]) -> list[Trial]:
    """The base ("base"), then each axis varied alone: one trial per value that differs from the base's.

    ``one_at_a_time(base, lr_D=[2e-4, 4e-4], k=[1, 2])`` with ``base.lr_D == 2e-4`` and
    ``base.k == 1`` gives "base", "lr_D=0.0004" and "k=2": every trial differs from the base
    in one field, so comparing it with the base measures that field alone. A value equal to
    the base's is the base itself and is not repeated.
    """
    axes = _check_axes(base, axes)
    trials = [Trial("base", base)]
    for name, values in axes.items():
        trials += [_trial(base, {name: v}) for v in values if v != getattr(base, name)]
    return trials


def _draw(rng: random.Random, name: str, axis: Any) -> Any:
    """One value of an axis of :func:`random_search`: a choice from a list, or from a range."""
    if isinstance(axis, list):
        if not axis:
            raise ValueError(f"axis {name} lists no values: give at least one")
        return rng.choice(axis)
    how = f'a list of values or a range (low, high) or (low, high, "log"), got {axis!r}'
    if not isinstance(axis, tuple) or len(axis) not in (2, 3):
        raise ValueError(f"axis {name} must be {how}")
    low, high, scale = (*axis, "linear") if len(axis) == 2 else axis
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high))
    if not numbers or not low <= high or scale not in ("linear", "log"):
        raise ValueError(f"axis {name} must be {how}, with low <= high")
    if scale == "log":
        if low <= 0:
            raise ValueError(f'axis {name}: a "log" range needs low > 0, got {low}')
        value = math.exp(rng.uniform(math.log(low), math.log(high)))
    else:
        value = rng.uniform(low, high)
    if isinstance(low, int) and isinstance(high, int):  # a range of integers gives integers
        return min(max(round(value), low), high)
    return float(f"{value:.3g}")  # three significant digits: readable names, nothing lost in practice


def random_search(base: Any, space: Mapping[str, Any], n: int, seed: int = 0) -> list[Trial]:
    """``n`` distinct trials, each axis of ``space`` drawn independently; the same list for the same seed.

    An axis is a list (a uniform choice among its values), a range ``(low, high)`` (uniform)
    or ``(low, high, "log")`` (log-uniform: as many draws between 1e-4 and 1e-3 as between
    1e-3 and 1e-2, the scale learning rates live on). Drawn floats keep three significant
    digits; a range of two integers draws integers. Trials are named like :func:`grid`'s
    ("lr_G=0.00031,k=2"), in the space's order.
    """
    _check_base(base)
    if not isinstance(space, Mapping) or not space:
        raise ValueError(f"space must be a dict of at least one axis, field -> list or range; got {space!r}")
    _check_fields(base, space)
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n (the number of trials) must be a positive integer, got {n!r}")
    rng = random.Random(seed)  # its own generator: no global random state is drawn from or reseeded
    trials: dict[str, Trial] = {}
    for _ in range(100 * n):
        changes = {name: _draw(rng, name, axis) for name, axis in space.items()}
        name = _name(changes)
        if name not in trials:
            trials[name] = _trial(base, changes)
            if len(trials) == n:
                return list(trials.values())
    raise ValueError(
        f"the space yields only {len(trials)} distinct trials in {100 * n} draws, fewer than n={n}: "
        "ask for fewer trials or widen the space (grid() lists a small space exhaustively)"
    )
