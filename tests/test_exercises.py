"""The exercises' checkers (gan_tutorial.exercises): every stored solution passes, and the mistakes
a learner would really make are rejected with ExerciseError, not waved through."""

import math

import pytest
import torch
import torch.nn.functional as F

from gan_tutorial import exercises, latent, losses, updates
from gan_tutorial.exercises import ExerciseError, chapter1, chapter2

ALL_IDS = [f"{c}.{n}" for c, count in enumerate((4, 5, 5, 5, 5, 3, 3, 3)) for n in range(1, count + 1)]


def rejected(exercise_id, answer, match=None):
    """Assert that ``answer`` fails exercise ``exercise_id`` (and that the message names it)."""
    with pytest.raises(ExerciseError, match=match) as info:
        exercises.check(exercise_id, answer)
    assert str(info.value).startswith(f"exercise {exercise_id}: ")
    return info.value


# -- the mechanism ------------------------------------------------------------------------


def test_registry_has_every_chapter_with_three_to_five_exercises():
    assert exercises.ids() == ALL_IDS
    for chapter in exercises.CHAPTERS:
        assert 3 <= sum(i.startswith(f"{chapter}.") for i in ALL_IDS) <= 5
    with pytest.raises(KeyError, match="no exercise '9.9'"):
        exercises.get("9.9")
    with pytest.raises(TypeError, match="a string such as '2.3', got 1.4: quote it"):
        exercises.get(1.4)


@pytest.mark.parametrize("exercise_id", ALL_IDS)
def test_stored_solution_passes_and_prints_one_line(exercise_id, capsys):
    exercises.check(exercise_id, exercises.solution(exercise_id))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"exercise {exercise_id}: correct"), lines


def test_stub_falls_back_to_the_solution_and_says_so(capsys):
    def to_unit(x):
        """Map [-1, 1] to [0, 1]."""
        raise NotImplementedError  # your code here

    exercises.check("0.1", to_unit)
    assert capsys.readouterr().out == (
        "exercise 0.1: to_unit is still the stub, so the stored solution was checked: it passes. "
        "Write yours and run this cell again.\n"
    )


def test_value_stub_none_or_ellipsis_falls_back(capsys):
    @exercises.exercise("9.1", "my_value", solution=3, kind="value")
    def check_value(answer):
        if answer != 3:
            raise ExerciseError(f"expected 3, got {answer}", "count again")

    try:
        for stub in (None, ...):
            exercises.check("9.1", stub)
            assert "my_value is still the stub" in capsys.readouterr().out
        exercises.check("9.1", 3)
        assert capsys.readouterr().out == "exercise 9.1: correct\n"
        err = rejected("9.1", 4, match="expected 3, got 4")
        assert err.hint == "count again" and "Hint: count again" in str(err)
    finally:
        del exercises._REGISTRY["9.1"]


def test_errors_in_the_answer_become_exercise_errors():
    def boom(x):
        return x.no_such_method()

    err = rejected("0.1", boom, match="to_unit raised AttributeError")
    assert isinstance(err.__cause__, AttributeError)  # the learner's traceback is kept
    rejected("0.1", "not a function", match="pass the function to_unit itself")


def test_notimplemented_from_pytorch_is_not_taken_for_the_stub(capsys):
    def sparse_view(x):
        return x.to_sparse().view(-1)  # PyTorch: NotImplementedError (views of sparse tensors)

    with pytest.raises(NotImplementedError):
        sparse_view(torch.zeros(3))
    rejected("0.1", sparse_view, match="NotImplementedError inside PyTorch")

    def todo(x):
        raise NotImplementedError("I will write this later")

    exercises.check("0.1", todo)  # a raise statement with a message is a stub too
    assert "still the stub" in capsys.readouterr().out


@pytest.mark.parametrize("exercise_id", ["0.2", "1.4", "3.5", "4.5"])
def test_checkers_leave_the_global_random_state_and_threads_alone(exercise_id, capsys):
    torch.manual_seed(1234)
    state, threads = torch.get_rng_state(), torch.get_num_threads()

    def answer(*args, **kwargs):  # draws from the global generator on the way
        torch.randn(100)
        return exercises.solution(exercise_id)(*args, **kwargs)

    exercises.check(exercise_id, answer)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.get_num_threads() == threads
    assert capsys.readouterr().out.startswith(f"exercise {exercise_id}: correct")


# -- chapter 0 ----------------------------------------------------------------------------


def test_0_1_rejects_in_place_min_max_and_clipping():
    rejected("0.1", lambda x: x.add_(1).div_(2), match="in place")
    rejected("0.1", lambda x: (x - x.min()) / (x.max() - x.min()), match="faint image")
    rejected("0.1", lambda x: x.clamp(0, 1))
    rejected("0.1", lambda x: (x + 1) * 127.5)  # pixel values, not [0, 1]


def _ring(n, generator, modes=8, noise=0.01, angle_of=lambda i: 2 * math.pi * i / 8, randn=torch.randn):
    i = torch.randint(0, modes, (n,), generator=generator)
    a = angle_of(i.double())
    centres = torch.stack([torch.cos(a), torch.sin(a)], dim=1).float()
    return centres + noise * randn(n, 2, generator=generator)


def test_0_2_rejects_collapse_no_noise_wrong_scale_wrong_angles():
    rejected("0.2", lambda n, g: _ring(n, g, modes=7), match="8 modes received")  # randint(0, 7)
    rejected("0.2", lambda n, g: _ring(n, g, modes=1), match="8 modes received")  # one mode
    rejected("0.2", lambda n, g: _ring(n, g, noise=0.0), match="no noise")
    rejected("0.2", lambda n, g: _ring(n, g, noise=0.1), match="standard deviation")  # sqrt of the variance
    rejected("0.2", lambda n, g: _ring(n, g, noise=0.01**2), match="standard deviation")
    rejected("0.2", lambda n, g: _ring(n, g, randn=torch.rand), match="randn")  # uniform in [0, 0.01)
    rejected("0.2", lambda n, g: _ring(n, g, angle_of=lambda i: 45.0 * i), match="angles")  # degrees
    rejected("0.2", lambda n, g: _ring(n, g, angle_of=lambda i: 2 * math.pi * i / 7), match="angles")
    rejected("0.2", lambda n, g: _ring(n, None), match="generators seeded alike")  # ignores the generator


def test_0_2_rejects_uniform_noise_of_the_right_size():
    def uniform(n, generator):  # centred, standard deviation 0.01, but not Gaussian
        x = _ring(n, generator, noise=0.0)
        return x + 0.01 * math.sqrt(3) * (2 * torch.rand(n, 2, generator=generator) - 1)

    rejected("0.2", uniform, match="Gaussian")


def test_0_3_rejects_mb_elements_and_a_fixed_four_bytes():
    rejected("0.3", lambda shape, dtype: math.prod(shape) * 4 / 1e6, match="exercise 0.3")
    rejected("0.3", lambda shape, dtype: math.prod(shape) / 2**20, match="counts elements")
    rejected("0.3", lambda shape, dtype: math.prod(shape) * 4 / 2**20, match="uint8")
    err = rejected(
        "0.3", lambda shape, dtype: math.prod(shape) * torch.empty((), dtype=dtype).element_size() / 1e6
    )
    assert "2**20" in err.hint


def _fit(x, loss="nll", steps=1000, lr=0.05):
    mu, log_sigma = torch.zeros((), requires_grad=True), torch.zeros((), requires_grad=True)
    opt = torch.optim.Adam([mu, log_sigma], lr=lr)
    for _ in range(steps):
        z = (x - mu) / log_sigma.exp()
        value = {
            "nll": 0.5 * z**2 + log_sigma,
            "no_log_sigma": 0.5 * z**2,  # the normalising term forgotten
            "mse": (x - mu) ** 2,  # fits the mean only
        }[loss].mean()
        opt.zero_grad()
        value.backward()
        opt.step()
    return mu.item(), log_sigma.exp().item()


def test_0_4_rejects_a_missing_log_sigma_a_squared_error_and_too_few_steps():
    rejected("0.4", lambda x: _fit(x, "no_log_sigma"), match="far too large")
    rejected("0.4", lambda x: _fit(x, "mse"), match="did not move")
    rejected("0.4", lambda x: _fit(x, steps=20, lr=0.01), match="maximum likelihood gives")
    rejected("0.4", lambda x: (x.mean().item(), x.var().item()), match="maximum likelihood gives")  # variance


# -- chapter 1 ----------------------------------------------------------------------------


def test_1_1_rejects_swapped_and_ratio():
    rejected("1.1", lambda a, b: b / (a + b), match="swapped")
    rejected("1.1", lambda a, b: a / b)
    rejected("1.1", lambda a, b: torch.sigmoid(a - b))


def test_1_2_rejects_naive_minimax_sum_and_clamped_forms():
    rejected("1.2", lambda l: -torch.log(torch.sigmoid(l)).mean(), match="NaN or infinite|softplus")
    rejected("1.2", lambda l: -F.softplus(l).mean(), match="minimax")
    rejected("1.2", lambda l: F.softplus(-l).sum(), match="mean")
    rejected("1.2", lambda l: -torch.log(torch.sigmoid(l).clamp_min(1e-12)).mean())


def _jsd(p, q, x, mistake):
    m = (p + q) / 2
    if mistake == "log":  # no care for 0 log 0
        return 0.5 * (torch.trapezoid(p * torch.log(p / m), x) + torch.trapezoid(q * torch.log(q / m), x))
    if mistake == "kl_pq":  # symmetrised KL instead of the mixture
        return 0.5 * (
            torch.trapezoid(torch.xlogy(p, p) - torch.xlogy(p, q), x)
            + torch.trapezoid(torch.xlogy(q, q) - torch.xlogy(q, p), x)
        )
    kl_pm = torch.trapezoid(torch.xlogy(p, p) - torch.xlogy(p, m), x)
    kl_qm = torch.trapezoid(torch.xlogy(q, q) - torch.xlogy(q, m), x)
    if mistake == "no_half":
        return kl_pm + kl_qm
    if mistake == "log2":
        return 0.5 * (kl_pm + kl_qm) / math.log(2)
    if mistake == "sum":
        return 0.5 * (
            (torch.xlogy(p, p) - torch.xlogy(p, m)).sum() + (torch.xlogy(q, q) - torch.xlogy(q, m)).sum()
        )
    raise ValueError(mistake)


@pytest.mark.parametrize(
    "mistake, match",
    [
        ("log", "xlogy"),
        ("kl_pq", "N\\(0, 1\\) and N\\(1, 1.5"),
        ("no_half", "1/2"),
        ("log2", "natural"),
        ("sum", "dx"),
    ],
)
def test_1_3_rejects_the_usual_jsd_mistakes(mistake, match):
    rejected("1.3", lambda p, q, x: _jsd(p, q, x, mistake), match=match)


def _r1_step(mistake):
    def step(G, D, opt_D, x_real, z, loss="minimax", gamma=0.5):
        gan_loss = losses.get_loss(loss)
        with torch.no_grad():
            x_fake = G(z)
        x_real = x_real.detach().requires_grad_(True)
        x_fake = x_fake.detach().requires_grad_(True)
        real_logits, fake_logits = D(x_real), D(x_fake)
        if mistake == "fake":  # penalises the fakes
            (g,) = torch.autograd.grad(fake_logits.sum(), x_fake, create_graph=True)
        elif mistake == "no_create_graph":  # the gradient is a constant for D's step
            (g,) = torch.autograd.grad(real_logits.sum(), x_real, retain_graph=True)
        else:
            (g,) = torch.autograd.grad(real_logits.sum(), x_real, create_graph=True)
        sq = g.pow(2).flatten(1).sum(1)
        penalty = {
            "no_half": gamma * sq.mean(),
            "unsquared": 0.5 * gamma * sq.sqrt().mean(),
            "sum_dim1": 0.5 * gamma * g.pow(2).sum(1).mean(),  # right for points, wrong for images
            "fixed_gamma": 0.25 * sq.mean(),  # gamma = 0.5 hard-coded
        }.get(mistake, 0.5 * gamma * sq.mean())
        opt_D.zero_grad(set_to_none=True)
        (gan_loss.d(real_logits, fake_logits) + penalty).backward()
        opt_D.step()

    return step


@pytest.mark.parametrize(
    "mistake, match",
    [
        ("fake", "real batch"),
        ("no_half", "1/2"),
        ("no_create_graph", "create_graph"),
        ("unsquared", "squared norm"),
        ("sum_dim1", "shape \\(32, 1, 3, 3\\)"),
        ("fixed_gamma", "gamma = 10.0"),
    ],
)
def test_1_4_rejects_the_usual_r1_mistakes(mistake, match):
    rejected("1.4", _r1_step(mistake), match=match)


def test_1_4_rejects_a_plain_d_step_and_one_that_moves_g():
    rejected(
        "1.4",
        lambda G, D, opt_D, x_real, z, loss="minimax", gamma=0.5: updates.d_step(
            G, D, opt_D, x_real, z, loss
        ),
    )

    def moves_g(G, D, opt_D, x_real, z, loss="minimax", gamma=0.5):
        chapter1.d_step_r1(G, D, opt_D, x_real, z, loss, gamma)
        with torch.no_grad():
            next(G.parameters()).add_(1.0)

    rejected("1.4", moves_g, match="changed G's weights")


def _dirac(k, steps=200, lr=0.1, loss="minimax"):
    G, D = chapter1.dirac_pair()
    point = torch.zeros(1, 1, dtype=torch.float64)
    opt_G, opt_D = torch.optim.SGD(G.parameters(), lr=lr), torch.optim.SGD(D.parameters(), lr=lr)
    updates.train(G, D, opt_G, opt_D, lambda: point, lambda: point, steps, loss=loss, k=k)
    return math.hypot(G.theta.item(), D.weight.item())


def test_1_5_rejects_other_runs():
    rejected("1.5", lambda k: _dirac(1), match="pass k on")  # k ignored
    rejected("1.5", lambda k: _dirac(k, loss="nonsaturating"), match="minimax")
    rejected("1.5", lambda k: _dirac(k, steps=100))
    rejected("1.5", lambda k: _dirac(k, lr=0.01))
    rejected("1.5", lambda k: math.sqrt(2), match="distance at the start")
    rejected("1.5", lambda k: abs(_dirac_theta(k)))


def _dirac_theta(k):
    G, D = chapter1.dirac_pair()
    point = torch.zeros(1, 1, dtype=torch.float64)
    opt_G, opt_D = torch.optim.SGD(G.parameters(), lr=0.1), torch.optim.SGD(D.parameters(), lr=0.1)
    updates.train(G, D, opt_G, opt_D, lambda: point, lambda: point, 200, loss="minimax", k=k)
    return G.theta.item()  # |theta| only, not the distance


def test_1_5_closed_form_matches_the_package_loop():
    for k in (1, 2, 5):
        assert math.isclose(_dirac(k), chapter1._dirac_closed_form(k), rel_tol=1e-6)


# -- chapter 2 ----------------------------------------------------------------------------


def test_2_1_rejects_minimax_sign_batch_mean_and_overflow():
    rejected("2.1", lambda l: -torch.sigmoid(l), match="minimax")
    rejected("2.1", lambda l: 1 - torch.sigmoid(l), match="sign")
    rejected("2.1", lambda l: (torch.sigmoid(l) - 1) / l.numel(), match="per sample")
    rejected("2.1", lambda l: -torch.exp(-l) / (1 + torch.exp(-l)), match="overflow")

    def with_autograd(l):
        l = l.clone().requires_grad_(True)
        return torch.autograd.grad(losses.g_loss_nonsaturating(l) * len(l), l)[0]

    rejected("2.1", with_autograd, match="raised RuntimeError")


def test_2_2_rejects_swapped_cross_entropy_and_fixed_coding():
    rejected("2.2", lambda p_d, p_g, a=-1.0, b=1.0: (a * p_d + b * p_g) / (p_d + p_g), match="swapped")
    rejected("2.2", lambda p_d, p_g, a=-1.0, b=1.0: p_d / (p_d + p_g), match="cross-entropy")
    rejected(
        "2.2", lambda p_d, p_g, a=-1.0, b=1.0: (p_d - p_g) / (p_d + p_g), match="a = 0.0"
    )  # a, b ignored


def test_2_3_rejects_squared_distances_variance_and_the_first_mode_only():
    def squared(x, means, sigma):
        d2 = torch.cdist(x.double(), means.double()).min(dim=1).values ** 2
        return (d2 < 3 * sigma).double().mean().item()

    def variance(x, means, sigma):
        d = torch.cdist(x.double(), means.double()).min(dim=1).values
        return (d < 3 * sigma**2).double().mean().item()

    def first_mode(x, means, sigma):
        return ((x.double() - means[0].double()).norm(dim=1) < 3 * sigma).double().mean().item()

    rejected("2.3", squared, match="not squared")
    rejected("2.3", variance)
    rejected("2.3", first_mode)


def test_2_4_rejects_zero_logs_log2_and_a_missing_k():
    def no_zero_care(counts):
        q = counts.double() / counts.sum()
        return (q * torch.log(len(counts) * q)).sum().item()

    def log2(counts):
        return chapter2.kl_uniform(counts) / math.log(2)

    def entropy_only(counts):
        q = counts.double() / counts.sum()
        return torch.xlogy(q, q).sum().item()

    rejected("2.4", no_zero_care, match="0 log 0")
    rejected("2.4", log2, match="natural")
    rejected("2.4", entropy_only, match="1/K")


def test_2_5_rejects_a_short_run_at_constant_rates():
    # 1,000 iterations at the default rates end near the 40% line, on either side of it depending
    # on the machine's floating-point rounding; half of them stay well below it
    rejected("2.5", lambda lab: lab.train(500), match="train_ring|modes|3 sigma")


def test_2_5_enforces_the_budget_without_training():
    def too_long(lab):
        lab.train(600)
        lab.train(600)

    def many_d_steps(lab):
        lab.set_rates(k=5)
        lab.train(200)

    def restarts(lab):
        lab.reset(hidden=256)

    from gan_tutorial.explorer import Explorer

    calls = []

    def counted(self, steps):  # the real one would train: only count, and advance the step
        calls.append(steps)
        self.step += steps
        return {}

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Explorer, "train", counted)
        rejected("2.5", too_long, match="budget")
        rejected("2.5", many_d_steps, match="k = 5")
        rejected("2.5", restarts, match="reset")
        rejected("2.5", lambda lab: None, match="did not train")
    assert calls == [600]


# -- chapter 3 ----------------------------------------------------------------------------


def test_3_1_rejects_variances_a_missing_cross_term_and_absolute_values():
    rejected("3.1", lambda m1, s1, m2, s2: (m1 - m2) ** 2 + (s1**2 - s2**2) ** 2, match="standard deviations")
    rejected("3.1", lambda m1, s1, m2, s2: (m1 - m2) ** 2 + (s1**2 - s2**2), match="square root")
    rejected("3.1", lambda m1, s1, m2, s2: abs(m1 - m2) + abs(s1 - s2), match="squares")


def test_3_2_rejects_swapped_losses_and_batch_means():
    def swapped(l, name):
        return torch.sigmoid(l) - 1 if name == "minimax" else -torch.sigmoid(l)

    def batch_mean(l, name):
        return (-torch.sigmoid(l) if name == "minimax" else torch.sigmoid(l) - 1) / l.numel()

    rejected("3.2", swapped, match="that is the nonsaturating")
    rejected("3.2", batch_mean, match="per sample")
    rejected("3.2", lambda l, name: torch.sigmoid(l) - 1, match="minimax")  # one formula for both


def test_3_3_rejects_soft_histograms_a_zero_threshold_and_nan():
    def soft(probs):
        h = probs.double().mean(0)
        return int((h >= 0.01).sum()), (h * torch.log(10 * h)).sum().item()

    def any_sample(probs):
        hist = torch.bincount(probs.argmax(1), minlength=10).double() / len(probs)
        h = hist[hist > 0]
        return int((hist > 0).sum()), (h * torch.log(10 * h)).sum().item()

    def nan_kl(probs):
        hist = torch.bincount(probs.argmax(1), minlength=10).double() / len(probs)
        return int((hist >= 0.01).sum()), (hist * torch.log(10 * hist)).sum().item()

    rejected("3.3", soft, match="argmax")
    rejected("3.3", any_sample, match="1%")
    rejected("3.3", nan_kl, match="0 log 0")


def test_3_4_rejects_all_pixels_whole_batch_and_zero_as_fake():
    rejected("3.4", lambda x: (x.flatten(1) < 0).all(dim=1), match="untrained")
    rejected("3.4", lambda x: x.min() < 0, match="shape")
    rejected("3.4", lambda x: (x.flatten(1) <= 0).any(dim=1), match="ToTensor")
    rejected("3.4", lambda x: x.flatten(1).mean(1) < 0)


def test_3_5_rejects_a_fresh_trainer_a_full_second_run_and_a_new_history():
    from gan_tutorial.checkpoint import config_of
    from gan_tutorial.trainer import Trainer

    def fresh_with_weights(checkpoint, x_train, total_steps):
        state = torch.load(checkpoint, weights_only=True)
        t = Trainer(config_of(state, checkpoint), x_train)
        t.G.load_state_dict(state["G"])
        t.D.load_state_dict(state["D"])
        t.step = state["step"]
        t.run(steps=total_steps - t.step, progress=False)
        return t

    def all_steps_again(checkpoint, x_train, total_steps):
        t = Trainer.resume(checkpoint, x_train)
        t.run(steps=total_steps, progress=False)
        return t

    def from_scratch(checkpoint, x_train, total_steps):
        state = torch.load(checkpoint, weights_only=True)
        t = Trainer(config_of(state, checkpoint), x_train)
        t.run(steps=total_steps, progress=False)
        return t

    rejected("3.5", fresh_with_weights, match="weights differ")
    rejected("3.5", all_steps_again, match="step 18")
    rejected("3.5", from_scratch, match="trained 12 iterations")


# -- chapter 4 ----------------------------------------------------------------------------


def test_4_1_rejects_the_convolution_formula_a_missing_padding_and_n_strides():
    rejected("4.1", lambda n, k, s, p, o=0: (n + 2 * p - k) // s + 1, match="convolution's formula")
    rejected("4.1", lambda n, k, s, p, o=0: (n - 1) * s - 2 * p + k, match="output padding")
    rejected("4.1", lambda n, k, s, p, o=0: n * s - 2 * p + k + o, match="n - 1 strides")


def test_4_2_rejects_k_not_squared_biases_per_input_and_an_ignored_flag():
    rejected(
        "4.2", lambda c_in, c_out, k, bias=True: c_in * c_out * k + (c_out if bias else 0), match="k x k"
    )
    rejected(
        "4.2",
        lambda c_in, c_out, k, bias=True: c_in * c_out * k * k + (c_in if bias else 0),
        match="output channel",
    )
    rejected("4.2", lambda c_in, c_out, k, bias=True: c_in * c_out * k * k + c_out, match="bias=False")


def test_4_3_rejects_lerp_sqrt_d_and_unit_norm():
    rejected("4.3", lambda z0, z1: (z0 + z1) / 2, match="norm")
    rejected("4.3", lambda z0, z1: (z0 + z1) / (z0 + z1).norm() * math.sqrt(len(z0)), match="norm")
    rejected("4.3", lambda z0, z1: (z0 + z1) / (z0 + z1).norm(), match="norm")
    rejected("4.3", lambda z0, z1: (z0 - z1) / (z0 - z1).norm() * z0.norm(), match="direction")


def test_4_3_closed_form_is_the_package_slerp():
    z0, z1 = torch.randn(2, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    z1 = z1 / z1.norm() * z0.norm()
    torch.testing.assert_close(_midpoint_closed_form(z0, z1), latent.slerp(z0, z1, 3)[1])


def _midpoint_closed_form(z0, z1):
    omega = torch.acos(z0 @ z1 / (z0.norm() * z1.norm()))
    return torch.sin(omega / 2) / torch.sin(omega) * (z0 + z1)


def test_4_4_rejects_the_mean_age_a_missing_every_and_the_approximation():
    rejected("4.4", lambda beta, every=1: every / (1 - beta), match="mean age")
    rejected("4.4", lambda beta, every=1: math.log(0.5) / math.log(beta), match="each update spans")
    rejected("4.4", lambda beta, every=1: every * math.log(2) / (1 - beta), match="approximation")


def _codes(G, x, mode="eval", steps=300, lr=0.05, weights=False):
    if mode == "eval":
        G.eval()
    z = torch.zeros(len(x), G.latent_dim, requires_grad=True)
    opt = torch.optim.Adam([z, *G.parameters()] if weights else [z], lr=lr)
    for _ in range(steps):
        loss = (G(z) - x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return z.detach()


def test_4_5_rejects_training_mode_moving_g_and_too_few_steps():
    rejected("4.5", lambda G, x: _codes(G, x, mode="train"), match="G.eval")
    rejected("4.5", lambda G, x: _codes(G, x, weights=True), match="codes z only")
    rejected("4.5", lambda G, x: _codes(G, x, steps=10, lr=0.01), match="more steps")
    rejected("4.5", lambda G, x: torch.zeros(len(x), G.latent_dim), match="more steps")


# -- chapter 5 ----------------------------------------------------------------------------


def test_5_1_rejects_no_exp_the_marginal_entropy_alone_the_reversed_kl_and_log2():
    def no_exp(probs):
        m = probs.mean(0, keepdim=True)
        return (torch.xlogy(probs, probs) - torch.xlogy(probs, m)).sum(1).mean().item()

    def marginal_only(probs):  # exp(H(y)): forgets the samples' own entropy
        m = probs.mean(0)
        return math.exp(-torch.xlogy(m, m).sum().item())

    def reversed_kl(probs):
        m = probs.mean(0, keepdim=True).expand_as(probs)
        return (torch.xlogy(m, m) - m * probs.clamp_min(1e-30).log()).sum(1).mean().exp().item()

    def log2(probs):
        m = probs.mean(0, keepdim=True)
        kl = (probs * (probs.clamp_min(1e-30).log2() - m.log2())).sum(1)
        return 2 ** kl.mean().item()

    def naive_log(probs):  # 0 * log 0 = nan for exactly certain samples
        m = probs.mean(0, keepdim=True)
        return (probs * (probs.log() - m.log())).sum(1).mean().exp().item()

    for wrong in (no_exp, marginal_only, reversed_kl, log2, naive_log):
        rejected("5.1", wrong)


def test_5_2_rejects_recall_self_in_the_radius_precision_and_the_wrong_mean():
    def fake_balls(real, fake, k):  # recall's balls
        radii = torch.cdist(fake, fake).topk(k + 1, dim=1, largest=False).values[:, k]
        return (torch.cdist(real, fake) < radii[None, :]).any(1).double().mean().item()

    def counts_itself(real, fake, k):  # the k-th smallest distance includes the 0 to the point itself
        radii = torch.cdist(real, real).topk(k, dim=1, largest=False).values[:, k - 1]
        return (torch.cdist(real, fake) < radii[:, None]).any(1).double().mean().item()

    def share_of_fakes(real, fake, k):  # precision: the fakes inside some real ball
        radii = torch.cdist(real, real).topk(k + 1, dim=1, largest=False).values[:, k]
        return (torch.cdist(real, fake) < radii[:, None]).any(0).double().mean().item()

    for wrong in (fake_balls, counts_itself, share_of_fakes):
        rejected("5.2", wrong, "coverage of")


def test_5_3_rejects_the_perfect_sampler_noise_and_a_single_point():
    from gan_tutorial import data

    def perfect(n, generator):
        return data.ring8().sample(n, generator)

    def noise(n, generator):
        return torch.rand(n, 2, generator=generator) * 3 - 1.5

    def far_away(n, generator):
        return torch.full((n, 2), 5.0)

    rejected("5.3", perfect, "recall")
    rejected("5.3", noise, "precision")
    rejected("5.3", far_away, "precision")


# -- chapter 6 ----------------------------------------------------------------------------


def test_6_1_rejects_a_weight_per_pixel_a_norm_over_one_axis_and_another_lambda():
    def per_pixel(D, x_real, x_fake):
        eps = torch.rand_like(x_real)  # one weight per pixel: off the segments
        x_hat = (eps * x_real + (1 - eps) * x_fake).detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
        return 10 * (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()

    def norm_dim1(D, x_real, x_fake):
        eps = torch.rand(x_real.shape[0], *[1] * (x_real.ndim - 1))
        x_hat = (eps * x_real + (1 - eps) * x_fake).detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
        return 10 * (grad.norm(2, dim=1) - 1).pow(2).mean()  # over the channels only

    def lambda_one(D, x_real, x_fake):
        return exercises.solution("6.1")(D, x_real, x_fake) / 10

    rejected("6.1", per_pixel, "segment|weight")
    rejected("6.1", norm_dim1)
    rejected("6.1", lambda_one)


def test_6_2_rejects_the_wgan_loss_and_a_flipped_sign():
    rejected("6.2", lambda r, f: f.mean() - r.mean() + 2)  # no relu: WGAN's loss plus the margins
    rejected("6.2", lambda r, f: torch.relu(1 + r).mean() + torch.relu(1 - f).mean())
    rejected("6.2", lambda r, f: torch.relu(1 - torch.cat([r, -f])).mean())  # one mean over both batches


def test_6_3_rejects_unpaired_and_independent_forms():
    import torch.nn.functional as F

    rejected("6.3", lambda r, f: F.softplus(f.mean() - r.mean()))  # difference of the means
    rejected("6.3", lambda r, f: F.softplus(-r).mean() + F.softplus(f).mean())  # plain cross-entropy
    rejected("6.3", lambda r, f: F.softplus(r - f).mean())  # roles swapped


def test_chapter7_rejects_the_usual_mistakes():
    good = exercises.solution("7.1")
    rejected("7.1", lambda psi, phi, v: (v * phi).sum(1, keepdim=True))  # the unconditional part forgotten
    rejected("7.1", lambda psi, phi, v: psi + (v * phi).sum(1), "shape")  # (B,) added to (B, 1)
    rejected("7.1", lambda psi, phi, v: psi * (v * phi).sum(1, keepdim=True))  # multiplied
    rejected("7.1", lambda psi, phi, v: psi + (v * phi).sum(0, keepdim=True).T[:6])  # summed over the batch
    assert good is not None
    rejected("7.2", lambda mu, lv: (mu**2 + lv.exp() - 1 - lv).sum(1))  # the half forgotten
    rejected("7.2", lambda mu, lv: 0.5 * (mu**2 + (0.5 * lv).exp() - 1 - lv).sum(1))  # sigma for sigma^2
    rejected("7.2", lambda mu, lv: 0.5 * (mu**2 + lv.exp() - 1 - lv).mean(1))  # a mean over dimensions
    rejected("7.2", lambda mu, lv: 0.5 * (mu**2 + lv.exp() - 1 + lv).sum(1))  # the log's sign
    rejected("7.3", lambda mu, lv, eps: mu + lv.exp() * eps)  # the variance, not the std
    rejected("7.3", lambda mu, lv, eps: mu + lv * eps)  # log variance as a scale
    rejected("7.3", lambda mu, lv, eps: (mu + (0.5 * lv).exp() * eps).detach(), "no gradient")
