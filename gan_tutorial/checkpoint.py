"""Checkpoints that survive interruption: atomic writes, safe loads, clear errors.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, so it loads
with ``torch.load(..., weights_only=True)`` (no arbitrary code runs from a file). It is
written to a temporary file in the same folder, flushed and fsync'ed, then moved over the
old one with ``os.replace``, which is atomic: a process killed mid-write leaves the
previous checkpoint intact (and at worst a stray ``*.tmp`` file).

A run's checkpoint (:meth:`gan_tutorial.trainer.Trainer.save`) also holds its
:class:`~gan_tutorial.config.TrainConfig`: :func:`config_of` rebuilds it, and
:func:`load_generator` rebuilds the run's generator from it (what ``sample`` and ``evaluate`` do).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import torch

from . import models
from .average import recalibrate_batch_norm
from .config import TrainConfig, build_models

#: Written into every checkpoint; a file without it was not written by this module.
FORMAT = "gan_tutorial.checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, or belongs to another model."""


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` (plus the format tag) to ``path`` atomically; return the path."""
    return atomic_save({**state, "format": FORMAT}, path)


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save(obj)`` to ``path`` through a temporary file and ``os.replace``: readers see
    the old file or the new one, never half of one. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"  # a name no other writer uses
    try:
        # "xb": never an existing file (O_EXCL); mode 0o666 less the umask, as for any new file
        with open(tmp, "xb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the rename makes them visible
        os.replace(tmp, path)  # atomic on POSIX and Windows
    except BaseException:
        tmp.unlink(missing_ok=True)
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
    except Exception as err:  # a damaged file can fail anywhere inside the unpickler
        # torch's own message may suggest weights_only=False: never for a file of unknown
        # origin (it would run whatever code the file holds), so it is not passed on
        raise CheckpointError(
            f"{path} is not a readable checkpoint: the file is damaged, or it is not a checkpoint "
            f"(it cannot be read as a file of tensors and numbers: {type(err).__name__}). Use another "
            "checkpoint, or train again with `python -m gan_tutorial train`"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a gan_tutorial checkpoint (no format tag {FORMAT!r}); "
            "train one with `python -m gan_tutorial train`"
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


def config_of(state: dict[str, Any], path: str | Path) -> TrainConfig:
    """The :class:`TrainConfig` saved in a checkpoint, or a :class:`CheckpointError` that
    says why it cannot be rebuilt (an unknown model, fields from another version)."""
    try:
        models.resolve(state.get("model"))
    except (ValueError, TypeError):
        raise CheckpointError(f"{path} holds an unknown model {state.get('model')!r}") from None
    try:
        return TrainConfig(**state["config"])
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(
            f"{path} holds a run this version of gan_tutorial cannot rebuild ({err}); "
            "was it written by another version?"
        ) from err


def load_generator(
    path: str | Path, device: str | torch.device = "cpu", average: bool = True
) -> torch.nn.Module:
    """The generator of a checkpoint, in eval mode, with its ``latent_dim`` attribute.

    With ``average`` (the default) it holds the moving average of G's weights when the run
    kept one (``ema`` > 0), batch norms recalibrated, as ``Trainer.generate`` samples;
    else the last weights.
    """
    state = load_checkpoint(path, model=None)
    config = config_of(state, path)
    G, _ = build_models(config)
    G = G.to(device)
    if "G" not in state:
        raise CheckpointError(f"{path} holds no generator weights; was it written by Trainer.save?")
    if average and "G_ema" in state:
        load_module_state(G, state["G_ema"], "generator")
        return recalibrate_batch_norm(G)  # as Trainer.generate samples it
    load_module_state(G, state["G"], "generator")
    return G.eval()
