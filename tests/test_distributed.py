"""One run on several processes (gan_tutorial.distributed): two CPU processes with gloo.

Each test starts two processes (about 5 s each); the command line's own tests run torchrun.
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import sys
import time

import distributed_tools as tools
import pytest
import torch

from gan_tutorial import cli, distributed
from gan_tutorial.config import RECIPES

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available(), reason="torch built without distributed"
)


def close(a: dict, b: dict, what: str, rtol: float = 1e-4, atol: float = 1e-6) -> None:
    assert a.keys() == b.keys()
    for name in a:
        scale = b[name].abs().max().item()
        torch.testing.assert_close(
            a[name],
            b[name],
            rtol=rtol,
            atol=atol * max(scale, 1.0),
            msg=lambda m, name=name: f"{what} {name}: {m}",
        )


@pytest.fixture(scope="module")
def two_processes() -> list[dict]:
    return tools.launch(tools.all_cases)


@pytest.mark.parametrize("case", list(tools.CASES))
def test_one_iteration_equals_one_process_on_the_whole_batch(two_processes, case):
    """G's and D's gradients after one iteration on two processes are one process's on the whole
    batch (with batch norm over each half, as each process normalises its own rows), to float
    tolerance: a plain step, batch norm in G and D (D called on real and fake before one backward),
    R1, R2, WGAN-GP's penalty (k = 5 critic steps) and a conditional pair."""
    one = tools.one_iteration(distributed.World(), case, parts=2)
    for rank in range(2):
        got = two_processes[rank][case]
        close(got["grad_D"], one["grad_D"], f"{case} rank {rank} grad of D")
        close(got["grad_G"], one["grad_G"], f"{case} rank {rank} grad of G")
        # D's weights after its step, where the step is decided by the gradient: Adam's first step is
        # lr * g / (|g| + eps), and where |g| is near eps (1e-8) float noise in g, well within the
        # tolerance above, moves the weight by a visible part of lr (seen: 1e-5 at lr 2e-3, 1 of 36,864)
        decided = {n: one["grad_D"][n].abs() > 1e-6 for n in one["grad_D"]}
        names = [n for n in got["D"] if "running" not in n and "num_batches" not in n]
        assert set(names) == set(decided)
        names = [n for n in names if decided[n].any()]
        compared = sum(int(decided[n].sum()) for n in names) / sum(m.numel() for m in decided.values())
        assert compared > 0.75, f"{case}: only {compared:.0%} of D's weights had a gradient to compare"
        close(
            {n: got["D"][n][decided[n]] for n in names},
            {n: one["D"][n][decided[n]] for n in names},
            f"{case} rank {rank} D",
            atol=1e-5,
        )


def test_both_processes_hold_identical_weights(two_processes):
    for case in tools.CASES:
        a, b = two_processes[0][case], two_processes[1][case]
        for key in ("G", "D"):
            for name in a[key]:
                assert torch.equal(a[key][name], b[key][name]), (case, key, name)


def test_the_average_and_batch_norm_statistics_are_identical_on_every_process_after_every_step():
    config = dataclasses.replace(RECIPES["dcgan"], batch_size=8, log_every=1)
    ranks = tools.launch(tools.trainer_steps, config, 3)
    for step in range(3):
        for part in ("ema", "buffers"):
            a, b = ranks[0]["after"][step][part], ranks[1]["after"][step][part]
            assert a.keys() == b.keys() and a
            for name in a:
                assert torch.equal(a[name], b[name]), (step, part, name)
    assert ranks[0]["history"] == ranks[1]["history"]


def test_a_run_on_two_processes_follows_one_process_without_batch_norm():
    """Same seed, same batches and codes: on a model without batch norm or dropout, two processes
    train as one does (Adam's steps after float rounding)."""
    config = dataclasses.replace(RECIPES["classic"], model="mlp", dropout=0.0, batch_size=16, log_every=1)
    two = tools.launch(tools.trainer_steps, config, 3)[0]
    one = tools.trainer_steps(distributed.World(), config, 3)
    close(two["G"], one["G"], "G after 3 steps", atol=1e-5)
    for key in ("loss_D", "loss_G"):
        assert two["history"][key] == pytest.approx(one["history"][key], rel=1e-4)


def test_a_nan_on_one_process_stops_both_at_the_same_check(tmp_path):
    ranks = tools.launch(tools.diverge_on_one, str(tmp_path))
    a, b = ranks
    assert a["step"] == b["step"] == 3 and a["at"] == b["at"] == 4  # the next check after step 3
    assert a["message"] == b["message"]
    assert "process 1 of 2: loss_D" in a["message"], a["message"]
    assert "last good checkpoint" in a["message"]
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["step"] == 2 and state["world_size"] == 2 and len(state["rng"]["torch_ranks"]) == 2


def test_one_process_world_is_the_identity():
    world = distributed.World()
    x = torch.arange(6)
    assert world.shard(x) is x and world.agree(1, 0) == (1, 0) and world.describe() == "1 process"
    assert not distributed.under_torchrun()


def test_sync_batch_norm_is_refused_on_the_cpu_with_the_reason():
    with pytest.raises(ValueError, match="CUDA only"):
        distributed.start(torch.device("cpu"), sync_bn=True)


def test_batch_size_must_split_evenly():
    world = distributed.ProcessGroup(0, 3, 0, "gloo", torch.device("cpu"))
    with pytest.raises(ValueError, match="does not split over 3"):
        from gan_tutorial.trainer import Trainer

        Trainer(dataclasses.replace(RECIPES["classic"], batch_size=16), tools.fake_images(), world=world)


# -- the command line under torchrun ------------------------------------------------------------

FAKE = ["--data", "fake", "--recipe", "dcgan", "--batch-size", "16", "--log-every", "5", "--no-progress"]


def torchrun(*args: str, wait: bool = True, **kw):
    """``torchrun --standalone --nproc_per_node=2 -m gan_tutorial <args>``."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += ["-m", "gan_tutorial", *args]
    if wait:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def started(proc: subprocess.Popen) -> str:
    """Read rank 0's header lines until training has started."""
    seen = ""
    while "writing" not in seen:
        line = proc.stdout.readline()
        assert line, f"torchrun ended early: {seen}{proc.stderr.read()}"
        seen += line
    return seen


def test_torchrun_survives_sigterm_resumes_exactly_and_sample_reads_its_checkpoint(tmp_path, capsys):
    out = tmp_path / "killed"
    proc = torchrun("train", *FAKE, "--steps", "100000", "--out", str(out), wait=False)
    try:
        header = started(proc)
        time.sleep(4)
        proc.send_signal(signal.SIGTERM)  # to torchrun, which passes it on to both processes
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert "2 processes, gloo" in header
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    step = state["step"]
    assert step > 0 and f"stopped by SIGTERM at step {step}: wrote" in err, err
    assert err.count("stopped by SIGTERM") == 1  # rank 0 alone says it
    assert "continue with: torchrun --standalone --nproc_per_node=2 -m gan_tutorial train --resume" in err
    assert state["world_size"] == 2 and "G_ema" in state and "module." not in next(iter(state["G"]))
    # continue to step + 6 on two processes, and compare with a run that went there straight
    resumed = torchrun("train", "--data", "fake", "--resume", str(out / "checkpoint.pt"), "--steps", "6")
    assert resumed.returncode == 0, resumed.stderr
    straight = torchrun("train", *FAKE, "--steps", str(step + 6), "--out", str(tmp_path / "straight"))
    assert straight.returncode == 0, straight.stderr
    assert straight.stdout.count("images/s") == 1  # one process reports
    a = torch.load(out / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=True)
    assert a["step"] == b["step"] == step + 6
    for net in ("G", "D", "G_ema"):
        assert all(torch.equal(a[net][k], b[net][k]) for k in b[net]), net
    # one process reads it: sample, and a resume that says what changes
    samples = tmp_path / "s.pt"
    assert cli.main(["sample", str(out / "checkpoint.pt"), "--output", str(samples), "-n", "4"]) == 0
    assert torch.load(samples, weights_only=True).shape == (4, 1, 28, 28)
    capsys.readouterr()
    argv = [
        "train",
        "--data",
        "fake",
        "--resume",
        str(out / "checkpoint.pt"),
        "--steps",
        "2",
        "--no-progress",
    ]
    assert cli.main([*argv, "--no-judge"]) == 0
    assert "written by 2 process(es) and continues on 1" in capsys.readouterr().out


def test_a_process_that_dies_stops_the_other_with_a_clear_message(tmp_path):
    proc = torchrun(
        "train", *FAKE, "--steps", "100000", "--out", str(tmp_path), "--dist-timeout", "30", wait=False
    )
    try:
        started(proc)
        time.sleep(2)
        workers = subprocess.run(
            ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True
        ).stdout.split()
        assert len(workers) == 2, workers
        os.kill(int(workers[-1]), signal.SIGKILL)
        t0 = time.monotonic()
        _, err = proc.communicate(timeout=120)
        waited = time.monotonic() - t0
    finally:
        proc.kill()
    assert proc.returncode != 0
    assert waited < 60, f"the other process took {waited:.0f} s to stop"
    assert re.search(r"error: process [01] of 2: another process of this run stopped", err), err[-3000:]
