"""The checkers of every chapter's exercises: ``check("1.4", d_step_r1)`` says pass or what is wrong.

Each exercise has an id ``"chapter.number"`` (``"0.1"`` ... ``"6.3"``), a name (what the learner
writes, e.g. ``to_unit``), a stored solution and a checker. The checker runs the answer on
inputs of its own, chosen so that the mistakes a learner would make give a different result,
and compares it with something independent: a closed form, PyTorch's own function, the
package's function or a brute-force search. Checkers are self-contained (they build the nets
and data they need), run on the CPU in seconds and leave the global random state as they found
it.

:func:`check` is what a notebook calls:

* the answer passes: it prints ``exercise 0.1: correct`` (sometimes with one fixed fact);
* the answer fails: it raises :class:`ExerciseError`, which says what is wrong and how to look;
* the answer is still the stub (calling it raises ``NotImplementedError``, or a value answer is
  ``None`` or ``...``): it checks the stored solution instead and prints one line that says so,
  so that a committed notebook runs top to bottom.

What it prints never depends on timings, the machine or quick mode: the notebooks compare it.
The exercises live in one module per chapter, ``chapter0``, ``chapter1``, ``chapter2``,
``chapter3``, ``chapter4``, ``chapter5``, ``chapter6``, ``chapter7`` and ``chapter8``; each registers its
checkers with :func:`exercise`. ``_common`` holds what the checkers share (answers read as numbers or
tensors, closeness with a message).
"""

from __future__ import annotations

import contextlib
import importlib
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from ..runtime import isolated

CHAPTERS = (0, 1, 2, 3, 4, 5, 6, 7, 8)


class ExerciseError(AssertionError):
    """An answer that does not pass its exercise's check; the message says what is wrong.

    ``hint`` (also appended to the message) says where to look.
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.message, self.hint = message, hint
        super().__init__(message if hint is None else f"{message}\nHint: {hint}")


@dataclass(frozen=True)
class Exercise:
    """One exercise: its id, the name of what the learner writes, its checker and solution.

    ``kind`` is ``"function"`` (the answer is called) or ``"value"`` (the answer is an object
    the checker inspects; ``None`` or ``...`` stands for the untouched stub). ``checker(answer)``
    raises :class:`ExerciseError` or returns an optional short fact to print.
    """

    id: str
    name: str
    checker: Callable[[Any], str | None]
    solution: Any
    kind: str = "function"

    def is_stub(self, answer: Any) -> bool:
        return self.kind == "value" and (answer is None or answer is Ellipsis)


_REGISTRY: dict[str, Exercise] = {}


def exercise(
    exercise_id: str, name: str, solution: Any, kind: str = "function"
) -> Callable[[Callable[[Any], str | None]], Callable[[Any], str | None]]:
    """Register the decorated checker for ``exercise_id``; ``solution`` is the stored answer."""
    if kind not in ("function", "value"):
        raise ValueError(f"kind must be 'function' or 'value', got {kind!r}")

    def register(checker: Callable[[Any], str | None]) -> Callable[[Any], str | None]:
        if exercise_id in _REGISTRY:
            raise ValueError(f"exercise {exercise_id} is registered twice")
        _REGISTRY[exercise_id] = Exercise(exercise_id, name, checker, solution, kind)
        return checker

    return register


def _load(chapter: int) -> None:
    importlib.import_module(f"{__name__}.chapter{chapter}")


def get(exercise_id: str) -> Exercise:
    """The :class:`Exercise` with this id (``"2.3"``); ``KeyError`` naming the known ids if none."""
    if not isinstance(exercise_id, str):
        raise TypeError(f"an exercise id is a string such as '2.3', got {exercise_id!r}: quote it")
    chapter = exercise_id.partition(".")[0]
    if chapter.isdigit() and int(chapter) in CHAPTERS:
        _load(int(chapter))
    if exercise_id not in _REGISTRY:
        raise KeyError(f"no exercise {exercise_id!r}; the exercises are {', '.join(ids())}")
    return _REGISTRY[exercise_id]


def ids() -> list[str]:
    """Every exercise's id, in chapter order."""
    for chapter in CHAPTERS:
        _load(chapter)
    return sorted(_REGISTRY, key=lambda i: tuple(int(part) for part in i.split(".")))


def solution(exercise_id: str) -> Any:
    """The stored solution of an exercise."""
    return get(exercise_id).solution


class _Stub(Exception):
    """The answer is the untouched stub."""


def _is_stub(err: NotImplementedError) -> bool:
    """Whether ``err`` comes from a ``raise NotImplementedError`` statement (the stub's), not from
    an operation PyTorch does not implement for these inputs (raised from inside a call)."""
    frames = traceback.extract_tb(err.__traceback__)
    return not err.args or (bool(frames) and (frames[-1].line or "").lstrip().startswith("raise"))


@contextlib.contextmanager
def _quiet_state() -> Iterator[None]:
    """Inside: gradients on and one CPU thread (the checkers' nets are tiny: a second thread only
    adds waiting). Afterwards the global CPU random state and the thread count are as before."""
    with isolated(threads=1), torch.enable_grad():
        yield


def _run(ex: Exercise, answer: Any) -> str | None:
    """Run the checker on ``answer``; every failure becomes an :class:`ExerciseError`."""
    if ex.kind == "function" and not callable(answer):
        raise ExerciseError(
            f"exercise {ex.id}: pass the function {ex.name} itself, got {type(answer).__name__}",
            f"exercises.check({ex.id!r}, {ex.name}), without calling {ex.name}",
        )
    try:
        with _quiet_state():
            return ex.checker(answer)
    except ExerciseError as err:
        raise ExerciseError(f"exercise {ex.id}: {err.message}", err.hint) from err.__cause__
    except NotImplementedError as err:
        if not _is_stub(err):
            raise ExerciseError(
                f"exercise {ex.id}: {ex.name} raised NotImplementedError inside PyTorch: {err}",
                "an operation does not support these inputs (a dtype or a device)",
            ) from err
        raise _Stub from err
    except Exception as err:
        raise ExerciseError(
            f"exercise {ex.id}: {ex.name} raised {type(err).__name__}: {err}",
            "the traceback above shows the line; the exercise's text gives the shapes and types it receives",
        ) from err


def _check_solution(ex: Exercise) -> str | None:
    try:
        return _run(ex, ex.solution)
    except (ExerciseError, _Stub) as err:  # a bug in the package, not the learner's
        raise RuntimeError(
            f"the stored solution of exercise {ex.id} does not pass its own check: {err}"
        ) from err


def check(exercise_id: str, answer: Any) -> None:
    """Check ``answer`` for exercise ``exercise_id``: print one line, or raise :class:`ExerciseError`.

    An untouched stub (calling it raises ``NotImplementedError``; ``None`` or ``...`` for a
    value answer) is replaced by the stored solution, and the line says so.
    """
    ex = get(exercise_id)
    try:
        if ex.is_stub(answer):
            raise _Stub
        fact = _run(ex, answer)
    except _Stub:
        _check_solution(ex)
        print(
            f"exercise {ex.id}: {ex.name} is still the stub, so the stored solution was checked: "
            "it passes. Write yours and run this cell again."
        )
        return
    print(f"exercise {ex.id}: correct" + (f" ({fact})" if fact else ""))


__all__ = ["CHAPTERS", "Exercise", "ExerciseError", "check", "exercise", "get", "ids", "solution"]
