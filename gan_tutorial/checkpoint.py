"""Checkpoints that survive interruption: atomic writes, safe loads, clear errors.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, so it loads
with ``torch.load(..., weights_only=True)`` (no arbitrary code runs from a file). It is
written to a temporary file in the same folder, flushed and fsync'ed, then moved over the
old one with ``os.replace``, which is atomic: a process killed mid-write leaves the
previous checkpoint intact (and at worst a stray ``*.tmp`` file).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

#: Written into every checkpoint; a file without it was not written by this module.
FORMAT = "gan_tutorial.checkpoint/1"


def _file_mode() -> int:
    """The mode ``open()`` gives a new file here: 0o666 less the process's umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, or belongs to another model."""


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` (plus the format tag) to ``path`` atomically; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, _file_mode())  # mkstemp makes it private (0600); give it an ordinary file's mode
        with os.fdopen(fd, "wb") as f:
            torch.save({**state, "format": FORMAT}, f)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the rename makes them visible
        os.replace(tmp, path)  # atomic on POSIX and Windows
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # persist the rename itself (not possible on every platform)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return path


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu", model: str | None = None
) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; check its model name if ``model`` is given.

    Raises :class:`CheckpointError` for a missing, truncated or foreign file, and for a
    checkpoint whose ``"model"`` entry differs from ``model``.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # a corrupt file can fail anywhere inside the unpickler
        raise CheckpointError(
            f"{path} is not a readable checkpoint (truncated or corrupt?): {err}".splitlines()[0]
        ) from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a gan_tutorial checkpoint (no format tag {FORMAT!r}); "
            "train one with `python -m gan_tutorial.train`"
        )
    if model is not None and state.get("model") != model:
        raise CheckpointError(
            f"{path} holds a {state.get('model')!r} model, not {model!r}; "
            f"pass a checkpoint of a {model!r} model or build a {state.get('model')!r} one"
        )
    return state


def load_module_state(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """``module.load_state_dict(state)`` with an error that says which network did not fit."""
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(
            f"the checkpoint's {what} does not fit this {type(module).__name__} (another "
            f"architecture or size?): {str(err).splitlines()[0]}"
        ) from err
