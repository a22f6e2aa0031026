"""Checkpoints: atomic writes, weights-only loads, clear errors."""

import os

import pytest
import torch

from gan_tutorial import checkpoint
from gan_tutorial.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def test_round_trip(tmp_path):
    state = {"model": "mlp", "step": 7, "w": torch.arange(5.0), "nested": {"a": [1, 2]}}
    path = save_checkpoint(state, tmp_path / "ck.pt")
    loaded = load_checkpoint(path, model="mlp")
    assert loaded["step"] == 7 and loaded["nested"] == {"a": [1, 2]}
    assert torch.equal(loaded["w"], state["w"])
    assert loaded["format"] == checkpoint.FORMAT
    assert os.listdir(tmp_path) == ["ck.pt"]  # no temporary file left behind


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_checkpoint_gets_an_ordinary_file_mode(tmp_path):
    umask = os.umask(0o022)
    try:
        path = save_checkpoint({"model": "mlp"}, tmp_path / "ck.pt")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644  # as open() would make it, not mkstemp's 0600


def test_kill_mid_write_keeps_previous(tmp_path, monkeypatch):
    path = save_checkpoint({"model": "mlp", "step": 1}, tmp_path / "ck.pt")

    def dying_save(obj, f):  # writes half a file, then the process "dies"
        f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint.torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"model": "mlp", "step": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1  # the previous checkpoint is intact
    assert os.listdir(tmp_path) == ["ck.pt"]


def test_corrupt_and_truncated_files(tmp_path):
    path = save_checkpoint({"model": "mlp", "w": torch.randn(1000)}, tmp_path / "ck.pt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)
    path.write_bytes(b"hello, not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")


def test_foreign_files_and_other_models(tmp_path):
    torch.save({"G": {}}, tmp_path / "plain.pt")  # a torch file, not one of ours
    with pytest.raises(CheckpointError, match="not a gan_tutorial checkpoint"):
        load_checkpoint(tmp_path / "plain.pt")
    path = save_checkpoint({"model": "dcgan"}, tmp_path / "ck.pt")
    with pytest.raises(CheckpointError, match="holds a 'dcgan' model, not 'mlp'"):
        load_checkpoint(path, model="mlp")


class Evil:
    """An arbitrary class: unpickling it would run code a weights-only load refuses."""


def test_weights_only_refuses_arbitrary_objects(tmp_path):
    torch.save({"format": checkpoint.FORMAT, "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="not a readable checkpoint") as err:
        load_checkpoint(tmp_path / "evil.pt")
    # torch's own message advises weights_only=False; for a file of unknown origin it must not be passed on
    assert "weights_only=False" not in str(err.value) and err.value.__cause__ is None


def test_a_new_checkpoint_has_an_ordinary_file_mode_and_the_umask_is_left_alone(tmp_path):
    old = os.umask(0o027)
    try:
        path = save_checkpoint({"model": "mlp"}, tmp_path / "ck.pt")
        assert os.umask(0o027) == 0o027  # untouched by the save
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o640  # 0o666 less the umask, as open() gives


def test_load_module_state_names_the_network():
    with pytest.raises(CheckpointError, match="generator does not fit"):
        checkpoint.load_module_state(torch.nn.Linear(3, 4), torch.nn.Linear(3, 5).state_dict(), "generator")
