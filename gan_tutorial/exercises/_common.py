"""Helpers the chapters' checkers share: answers read as numbers or tensors, comparisons that
explain themselves. (Seeded inputs come from :func:`gan_tutorial.runtime.isolated`.)"""

from __future__ import annotations

import math
from typing import Any

import torch

from . import ExerciseError


def show(t: Any, digits: int = 4) -> str:
    """A short, readable rendering of a tensor or number for a message."""
    if isinstance(t, torch.Tensor):
        t = t.detach().cpu()
        if t.numel() > 8:
            return f"tensor of shape {tuple(t.shape)}"
        return "[" + ", ".join(f"{v:.{digits}g}" for v in t.double().flatten().tolist()) + "]"
    if isinstance(t, float):
        return f"{t:.{digits + 2}g}"
    return repr(t)


def as_tensor_answer(
    value: Any, what: str, shape: tuple[int, ...] | torch.Size | None = None
) -> torch.Tensor:
    """``value`` as a tensor, or an :class:`ExerciseError` saying what came back instead."""
    if not isinstance(value, torch.Tensor):
        raise ExerciseError(f"{what} returned {type(value).__name__}, not a torch.Tensor")
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise ExerciseError(f"{what} returned shape {tuple(value.shape)}, expected {tuple(shape)}")
    return value


def as_float_answer(value: Any, what: str) -> float:
    """``value`` (a Python number or a one-element tensor) as a float."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ExerciseError(
                f"{what} returned a tensor of shape {tuple(value.shape)}, expected one number"
            )
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ExerciseError(f"{what} returned {type(value).__name__}, expected a number")
    return float(value)


def close(got: Any, expected: Any, rtol: float = 1e-6, atol: float = 1e-9) -> bool:
    """Whether ``got`` and ``expected`` (numbers or tensors of one shape) agree, NaN never."""
    if isinstance(expected, torch.Tensor) or isinstance(got, torch.Tensor):
        got_t = torch.as_tensor(got).detach().double().cpu()
        exp_t = torch.as_tensor(expected).detach().double().cpu()
        if got_t.shape != exp_t.shape:
            return False
        return bool(torch.isclose(got_t, exp_t, rtol=rtol, atol=atol).all())
    return math.isclose(float(got), float(expected), rel_tol=rtol, abs_tol=atol)


def require_close(
    got: Any, expected: Any, what: str, hint: str | None = None, rtol: float = 1e-6, atol: float = 1e-9
) -> None:
    """Raise :class:`ExerciseError` ``"<what> gave <got>, expected <expected>"`` unless they agree."""
    if not close(got, expected, rtol, atol):
        if isinstance(got, torch.Tensor) and not bool(torch.isfinite(got.detach()).all()):
            hint = hint or "some values are NaN or infinite"
        raise ExerciseError(f"{what} gave {show(got)}, expected {show(expected)}", hint)


def require_tensor_close(
    value: Any,
    call: str,
    shape: tuple[int, ...],
    expected: torch.Tensor,
    what: str,
    hint: str | None = None,
    rtol: float = 1e-6,
) -> torch.Tensor:
    """:func:`as_tensor_answer` (what ``call`` returned is a tensor of ``shape``), then
    :func:`require_close` against ``expected``; returns the answer."""
    got = as_tensor_answer(value, call, shape)
    require_close(got, expected, what, hint, rtol=rtol)
    return got
