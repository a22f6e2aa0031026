"""The command line: train on fake data, sample to .pt and .png, clear errors."""

import subprocess
import sys

import pytest
import torch

from gan_tutorial import accel, cli
from gan_tutorial.checkpoint import save_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    args = ["--data", "fake", "--steps", "3", "--batch-size", "16", "--log-every", "2", "--no-progress"]
    assert cli.main(["train", *args, "--out", str(out), "--device", "cpu"]) == 0
    return out / "checkpoint.pt"


def test_train_writes_a_checkpoint_and_resumes(checkpoint, capsys):
    assert checkpoint.is_file()
    out = checkpoint.parent
    assert (
        cli.main(["train", "--data", "fake", "--resume", str(checkpoint), "--steps", "2", "--out", str(out)])
        == 0
    )
    assert "step 5:" in capsys.readouterr().out
    assert torch.load(checkpoint, weights_only=True)["step"] == 5


def test_train_on_mnist_prints_the_judge_and_the_class_mix(tmp_path, capsys):
    from gan_tutorial.data import MNISTNotFoundError, load_mnist

    try:
        load_mnist(train=False, download=False)
    except MNISTNotFoundError as err:
        pytest.skip(f"MNIST is not in data/ ({str(err).splitlines()[0]})")
    args = ["--steps", "2", "--batch-size", "16", "--no-progress", "--device", "cpu"]
    assert cli.main(["train", *args, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "judge (10,000 samples): FD" in out
    assert "real digits in these samples' proportions: FD" in out


def test_sample_pt_and_png(checkpoint, tmp_path):
    assert cli.main(["sample", str(checkpoint), "-n", "10", "-o", str(tmp_path / "x.pt")]) == 0
    x = torch.load(tmp_path / "x.pt", weights_only=True)
    assert x.shape == (10, 1, 28, 28) and x.dtype == torch.float32
    assert -1 <= x.min() and x.max() <= 1
    # run as a module, as a user would
    cmd = [
        sys.executable,
        "-m",
        "gan_tutorial",
        "sample",
        str(checkpoint),
        "-n",
        "9",
        "-o",
        str(tmp_path / "g.png"),
    ]
    subprocess.run(cmd, check=True, capture_output=True)
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--data", "fake"], "give a budget"),
        (["--data", "fake", "--steps", "0"], "must be a positive finite number"),
        (["--data", "fake", "--seconds", "nan"], "must be a positive finite number, got nan"),
        (["--data", "fake", "--steps", "1", "--lr-g", "nan"], "lr_G must be a finite number"),
        (["--data", "fake", "--steps", "1", "--loss", "wgan-div"], "invalid choice"),
        (["--data", "fake", "--steps", "1", "--device", "tpu"], "unknown device"),
        (["--data", "fake", "--steps", "1", "--model", "dcgan", "--r1", "1"], "dcgan-bn-g"),
    ],
)
def test_train_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", *argv])
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_sample_bad_arguments(checkpoint, tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["sample", str(checkpoint), "-n", "4", "-o", str(tmp_path / "x.jpg")])
    assert "must end in .pt" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["sample", str(checkpoint), "-n", "-3", "-o", str(tmp_path / "x.pt")])
    assert "must be a positive finite number" in capsys.readouterr().err
    other = save_checkpoint({"model": "stylegan", "config": {}}, tmp_path / "other.pt")
    with pytest.raises(SystemExit):
        cli.main(["sample", str(other), "-o", str(tmp_path / "x.pt")])
    assert "unknown model 'stylegan'" in capsys.readouterr().err
    state = torch.load(checkpoint, weights_only=True)
    state["config"]["latent_dim"] = 50  # same family, another size: the weights do not fit
    save_checkpoint(state, tmp_path / "resized.pt")
    with pytest.raises(SystemExit):
        cli.main(["sample", str(tmp_path / "resized.pt"), "-o", str(tmp_path / "x.pt")])
    assert "generator does not fit" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["sample", str(tmp_path / "missing.pt"), "-o", str(tmp_path / "x.pt")])
    assert "no checkpoint at" in capsys.readouterr().err


def test_compile_flag_compiles_g_and_d_in_place_and_times_the_warm_up(tmp_path, capsys, monkeypatch):
    compiled = []  # record instead of compiling: real compilation is too slow for the test suite
    record = lambda self, *a, **kw: compiled.append(type(self).__name__)  # noqa: E731
    monkeypatch.setattr(torch.nn.Module, "compile", record)
    args = ["--data", "fake", "--steps", "5", "--batch-size", "16", "--ema", "0.9", "--no-progress"]
    assert cli.main(["train", *args, "--compile", "--out", str(tmp_path), "--no-judge"]) == 0
    out = capsys.readouterr().out
    assert sorted(compiled) == ["MLPDiscriminator", "MLPGenerator"] and "torch.compile" in out
    assert "warm-up: " in out and "for the first 3 steps" in out and "step 5:" in out
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["step"] == 5 and "G_ema" in state
    assert not any(k.startswith("_orig_mod") for k in state["G"])  # loads into a plain G


def test_no_cuda_graphs_flag_reaches_the_trainer(tmp_path, capsys, monkeypatch):
    seen = []
    choose = accel.choose
    monkeypatch.setattr(accel, "choose", lambda *a, **kw: seen.append(kw) or choose(*a, **kw))
    args = ["--data", "fake", "--steps", "2", "--batch-size", "16", "--no-progress", "--no-judge"]
    assert cli.main(["train", *args, "--no-cuda-graphs", "--out", str(tmp_path)]) == 0
    assert seen[-1]["cuda_graphs"] is False and capsys.readouterr().out.count(", eager") == 1
    assert cli.main(["train", *args, "--out", str(tmp_path / "b")]) == 0
    assert seen[-1]["cuda_graphs"] is True


# -- a run that survives a kill, and does not overwrite another ---------------------------

FAKE = ["--data", "fake", "--batch-size", "16", "--log-every", "5", "--no-progress", "--threads", "1"]


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "gan_tutorial", *args], capture_output=True, text=True, **kw)


def test_sigterm_leaves_a_checkpoint_and_resume_ends_bit_identical(tmp_path):
    import signal
    import time

    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gan_tutorial", "train", *FAKE, "--steps", "100000", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert "writing" in proc.stdout.readline() + proc.stdout.readline()  # training has started
        time.sleep(1.5)
        proc.send_signal(signal.SIGTERM)  # what a scheduler or `kill` sends
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert (
        "stopped by SIGTERM at step" in err and "continue with: python -m gan_tutorial train --resume" in err
    )
    step = torch.load(out / "checkpoint.pt", weights_only=True)["step"]
    assert step > 0 and f"at step {step}:" in err
    assert f"--steps {100000 - step}" in err  # the hint finishes the budget, it does not restart it
    # continue to step + 7, and compare with a run that went there straight
    resumed = _cli(
        "train", *FAKE[:2], "--resume", str(out / "checkpoint.pt"), "--steps", "7", "--threads", "1"
    )
    assert resumed.returncode == 0, resumed.stderr
    straight = _cli("train", *FAKE, "--steps", str(step + 7), "--out", str(tmp_path / "straight"))
    assert straight.returncode == 0, straight.stderr
    a = torch.load(out / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=True)
    assert a["step"] == b["step"] == step + 7
    for net in ("G", "D"):
        assert all(torch.equal(a[net][k], b[net][k]) for k in b[net]), net


def test_runs_get_their_own_folders_and_an_existing_run_is_not_overwritten(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["train", "--data", "fake", "--steps", "2", "--batch-size", "16", "--no-progress"]
    assert cli.main(args) == 0 and cli.main(args) == 0
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 2 and all(r.name.endswith("classic") or "classic-" in r.name for r in runs)
    with pytest.raises(SystemExit):
        cli.main([*args, "--out", str(runs[0])])
    assert "already holds a run (step 2): continue it with `--resume" in capsys.readouterr().err
    from gan_tutorial.cli.train import _fresh_out

    first, second = _fresh_out("fast"), _fresh_out("fast")  # two runs started in the same second
    assert first != second and first.is_dir() and second.is_dir()  # each claimed its folder at once


def test_a_compile_warm_up_that_uses_the_whole_budget_still_writes(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, **kw: None)  # the flow, not the compiler
    out = tmp_path / "run"
    args = ["train", "--data", "fake", "--steps", "2", "--batch-size", "16", "--no-progress", "--no-judge"]
    assert cli.main([*args, "--compile", "--out", str(out)]) == 0
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 2
    assert f"wrote {out / 'checkpoint.pt'}" in capsys.readouterr().out


def test_resume_names_a_conflicting_flag_and_takes_policy_flags(checkpoint, capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--data", "fake", "--resume", str(checkpoint), "--steps", "1", "--lr-g", "0.5"])
    assert "lr_G=0.5 (the checkpoint has 0.0002)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["train", "--data", "fake", "--resume", str(checkpoint), "--steps", "1", "--recipe", "fast"])
    assert "model='mlp-bn' (the checkpoint has 'mlp')" in capsys.readouterr().err
    ok = ["train", "--data", "fake", "--resume", str(checkpoint), "--steps", "1", "--log-every", "1"]
    assert cli.main([*ok, "--batch-size", "16", "--recipe", "classic"]) == 0  # equal values are fine


def test_each_command_has_one_form():
    """``python -m gan_tutorial <command>`` (or ``gan-tutorial <command>``); version 0.1's module forms,
    ``python -m gan_tutorial.train`` and its siblings, went in 0.3.0."""
    for command in ("train", "sample", "bench", "evaluate"):
        helped = _cli(command, "--help")
        assert helped.returncode == 0 and f"python -m gan_tutorial {command}" in helped.stdout
    for module in ("train", "sample", "evaluate"):
        command = [sys.executable, "-m", f"gan_tutorial.{module}"]
        gone = subprocess.run(command, capture_output=True, text=True)
        assert gone.returncode != 0 and f"No module named gan_tutorial.{module}" in gone.stderr


def test_every_config_field_is_a_flag():
    from gan_tutorial.cli.train import NOT_FLAGS, config_flags
    from gan_tutorial.config import TrainConfig

    fields = {f.name for f in __import__("dataclasses").fields(TrainConfig)}
    assert set(config_flags().values()) == fields - set(NOT_FLAGS)
    text = cli.build_parser().parse_args(["train", "--steps", "1"]).parser.format_help()
    for name in ("--lr-g", "--lr-d", "--checkpoint-seconds", "--r1-every", "--model-arg"):
        assert name in text
