"""The gallery's bugs: each run shows its symptom, the doctor names each by its finding, a healthy
run has none, and each bug shows the code that holds its wrong line."""

import math

import pytest
import torch

from gan_tutorial.bugs import BUGS, Bug, correct
from gan_tutorial.bugs.setup import IMAGE_BATCH
from gan_tutorial.data import MNIST_FILES, mnist_raw_dir
from gan_tutorial.doctor import check_codes, check_error, diagnose, report
from gan_tutorial.models import toy_mlp
from gan_tutorial.updates import train

# bug -> (the finding its run must produce, the steps the test runs: None is the bug's own default).
# The trend checks get the gallery's full runs; a symptom there from the first step on (an exact
# zero, a structure, a crash) shows in a few steps.
EXPECTED = {
    "swapped_gradients": ("d_rates_fakes_real", None),
    "misplaced_log": ("non_finite", 5),
    "data_range": ("data_range", 20),
    "log_sigmoid_underflow": ("non_finite", None),
    "noise_4d_linear": ("code_shape", None),
    "pm1_labels_bce": ("negative_loss", None),
    "bn_in_wgan_gp_critic": ("batch_norm_with_penalty", 10),
    "per_pixel_gp_weight": ("gp_interpolates", 10),
    "detached_fake_in_g_step": ("no_gradient_G", 20),
    "zero_grad_misplaced": ("no_gradient_D", 20),
    "eval_mode_left_on": ("eval_mode", 20),
}


def _have_mnist() -> bool:
    raw = mnist_raw_dir()
    return all((raw / name).is_file() or (raw / f"{name}.gz").is_file() for name in MNIST_FILES)


def _skip_without_mnist(bug: Bug) -> None:
    if bug.images and not _have_mnist():
        pytest.skip(f"{bug.name} trains on MNIST, which is not in {mnist_raw_dir()}")


# ---------------------------------------------------------------------------------------
# The gallery
# ---------------------------------------------------------------------------------------


def test_the_table_covers_the_gallery():
    assert set(EXPECTED) == set(BUGS)
    for name, bug in BUGS.items():
        assert bug.name == name and bug.title and bug.what and bug.fix and bug.steps >= 1


@pytest.mark.parametrize("name", list(BUGS))
def test_each_bug_is_named_by_its_finding(name):
    bug = BUGS[name]
    _skip_without_mnist(bug)
    code, steps = EXPECTED[name]
    run = bug.run(steps=steps, seed=0)
    findings = run.diagnose()
    assert code in [f.code for f in findings], report(findings)
    for finding in findings:
        text = str(finding)
        assert text.startswith(f"[{finding.code}]") and finding.evidence in text and finding.fix in text
    # the same through diagnose's own interface
    again = diagnose(
        run.history,
        loss=run.loss,
        G=run.G,
        D=run.D,
        data=run.data,
        gradient_penalty=run.gradient_penalty,
        z=run.z,
        error=run.error,
    )
    assert again == findings


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_healthy_run_has_no_finding(seed):
    run = correct(seed=seed)
    assert len(run.history.step) == 300
    findings = run.diagnose()
    assert findings == [], report(findings)
    assert report(findings) == "no problem found"


def test_the_healthy_image_run_has_no_finding():
    if not _have_mnist():
        pytest.skip(f"MNIST is not in {mnist_raw_dir()}")
    run = correct(steps=150, seed=0, images=True)
    assert float(run.data.min()) == -1.0
    assert run.diagnose() == []


def test_runs_record_the_monitors_of_updates_train():
    torch.manual_seed(0)
    G, D = toy_mlp(2, 2), toy_mlp(2, 1)
    history = train(
        G,
        D,
        torch.optim.Adam(G.parameters()),
        torch.optim.Adam(D.parameters()),
        lambda: torch.randn(8, 2),
        lambda: torch.randn(8, 2),
        steps=2,
        log_every=1,
    )
    run = BUGS["zero_grad_misplaced"].run(steps=3)
    assert set(run.history.values) == set(history.values)
    assert run.history.step == [1, 2, 3]


def test_a_run_is_seeded_and_leaves_the_global_state_alone():
    torch.manual_seed(123)
    state, threads = torch.get_rng_state(), torch.get_num_threads()
    a = BUGS["pm1_labels_bce"].run(steps=5, seed=3)
    assert torch.equal(torch.get_rng_state(), state) and torch.get_num_threads() == threads
    b = BUGS["pm1_labels_bce"].run(steps=5, seed=3)
    c = BUGS["pm1_labels_bce"].run(steps=5, seed=4)
    assert a.history.values == b.history.values != c.history.values


@pytest.mark.parametrize("steps, seed", [(0, 0), (-1, 0), (2.5, 0), (True, 0), (10, -1), (10, "0")])
def test_run_refuses_bad_arguments(steps, seed):
    with pytest.raises(ValueError, match="steps|seed"):
        BUGS["misplaced_log"].run(steps=steps, seed=seed)
    with pytest.raises(ValueError, match="steps|seed"):
        correct(steps=steps, seed=seed)


def test_the_symptoms_the_chapter_shows():
    run = BUGS["misplaced_log"].run(steps=5)
    assert run.details["argument"] < 0 and math.isnan(run.history["loss_D"][0])
    assert len(run.history.step) == 1  # stopped at the first non-finite step

    run = BUGS["log_sigmoid_underflow"].run()
    assert math.isinf(run.details["naive"]) and math.isfinite(run.details["softplus"])
    assert run.details["max_fake_logit"] > 17 or run.details["min_fake_logit"] < -88

    run = BUGS["detached_fake_in_g_step"].run(steps=20)
    assert set(run.history["grad_G"]) == {0.0} and min(run.history["grad_D"]) > 0


def test_the_4d_codes_fail_clearly_in_the_package_and_cryptically_in_a_plain_stack():
    if not _have_mnist():
        pytest.skip(f"MNIST is not in {mnist_raw_dir()}")
    run = BUGS["noise_4d_linear"].run()
    assert run.history.step == [] and tuple(run.z.shape) == (IMAGE_BATCH, 100, 1, 1)
    assert isinstance(run.error, ValueError) and "(B, 100)" in str(run.error)
    plain = run.details["plain_error"]
    assert isinstance(plain, RuntimeError) and "mat1 and mat2" in str(plain)
    assert check_codes(run.z, run.details["plain_G"]).code == "code_shape"
    assert check_error(plain).code == "run_failed" and "code_shape" in check_error(plain).cause


@pytest.mark.parametrize("name", list(BUGS))
def test_each_bug_shows_its_wrong_line_beside_its_fix(name):
    source = BUGS[name].source
    assert source.startswith("def ") and "# BUG:" in source and "# FIX:" in source
    assert source.index("# BUG:") < source.index("# FIX:")  # the wrong line, then its fix


@pytest.mark.parametrize("name", list(BUGS))
def test_each_bug_diff_gives_the_wrong_lines_and_the_fix(name):
    lines = BUGS[name].diff.splitlines()
    assert lines[0].startswith("  # ") and any(x.startswith("- ") for x in lines)
    assert lines[-1].startswith("+ ") and "# FIX" not in BUGS[name].diff
