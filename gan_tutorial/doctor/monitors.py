"""The checks of a run's monitors: what a :class:`~gan_tutorial.updates.History` shows (chapter 6).

Each check reads the monitors :func:`updates.train` and the trainer record
(:data:`~gan_tutorial.updates.MONITORS`) and returns a :class:`~.findings.Finding` or ``None``:

* :func:`check_finite` - a NaN or infinite loss, output of D or gradient norm (``non_finite``);
* :func:`check_loss_sign` - a cross-entropy or least-squares loss below 0 (``negative_loss``);
* :func:`check_no_gradient` - a player's gradient exactly 0 (``no_gradient_G``, ``no_gradient_D``);
* :func:`check_d_rates_fakes_real` - D calls the fakes real (``d_rates_fakes_real``);
* :func:`check_d_wins` - D wins outright while G's loss climbs (``d_wins``).

Thresholds are deliberately coarse (a healthy run's monitors wander): D "calls the fakes real"
when its mean d_fake over the last third of the run is at least 0.9, D "wins" when d_real is at
least 0.95 and d_fake at most 0.05 there. A check that needs a monitor the history lacks is
skipped.
"""

from __future__ import annotations

import math

from ..losses import GANLoss, get_loss
from ..updates import MONITORS, History
from .findings import MIN_STEPS, Finding, checked_history, last_third, loss_kind, mean, series, span


def check_finite(history: History) -> Finding | None:
    """A NaN or infinite value in any of the monitors of :data:`~gan_tutorial.updates.MONITORS`,
    with the first step it appeared at and D's outputs (d_real, d_fake) at that step and the one
    logged before it."""
    history = checked_history(history)
    watched = [key for key in MONITORS if series(history, key)]
    i = next(
        (i for i in range(len(history.step)) if not all(math.isfinite(history[k][i]) for k in watched)), None
    )
    if i is None:
        return None
    bad = [f"{key} = {history[key][i]}" for key in watched if not math.isfinite(history[key][i])]
    scores = [key for key in ("d_real", "d_fake") if key in watched]

    def at(j: int) -> str:
        return ", ".join(f"{key} = {history[key][j]:.4g}" for key in scores)

    context = f"; at that step {at(i)}" if scores else ""
    if scores and i > 0:
        context += f", at the logged step before it ({history.step[i - 1]}) {at(i - 1)}"
    first = "the first logged step" if i == 0 else f"the first non-finite one of {i + 1} logged steps"
    return Finding(
        "non_finite",
        f"{', '.join(bad)} at step {history.step[i]}, {first}{context}.",
        "a log of a number <= 0 in a loss: a log around a sum, log(D(x) + log(1 - D(G(z)))), whose "
        "argument goes negative; log(sigmoid(l)) or log(1 - sigmoid(l)) written out on D's logits, "
        "which are log 0 in float32 once a fake's logit passes about 16.7 (D confidently wrong about it) "
        "or falls below about -88.7; or a learning rate so high "
        "that the weights overflow.",
        "compute the losses on logits with softplus (gan_tutorial.losses, or "
        "F.binary_cross_entropy_with_logits), check the brackets of every log, and lower the "
        "learning rates if it persists.",
    )


def check_loss_sign(history: History, loss: str | GANLoss | None = None) -> Finding | None:
    """A loss below 0 where it cannot be: D's cross-entropy (and the non-saturating G's) is a sum
    of -log of probabilities, and a least-squares loss a sum of squares, both >= 0 whatever D does.
    Below 0 they are not what they claim to be: most often labels outside [0, 1]."""
    history = checked_history(history)
    kind = loss_kind(loss)
    # D's loss is a cross-entropy in both cross-entropy games, G's only in the non-saturating one
    if kind == "cross_entropy":
        keys = ["loss_D"] + (["loss_G"] if get_loss(loss or "nonsaturating").name == "nonsaturating" else [])
    elif kind == "least_squares":
        keys = ["loss_D", "loss_G"]
    else:
        return None
    for key in keys:
        values = series(history, key)
        if values is None:
            continue
        negative = [i for i, v in enumerate(values) if v < -1e-6]
        if not negative:
            continue
        low = min(values)
        name = "cross-entropy" if kind == "cross_entropy" else "least-squares loss"
        return Finding(
            "negative_loss",
            f"{key} went below 0 at step {history.step[negative[0]]} and was negative at {len(negative)} of "
            f"{len(values)} logged steps, down to {low:.4g} (last {values[-1]:.4g}); a {name} is >= 0 for "
            "any D.",
            "labels outside [0, 1] in a binary cross-entropy, e.g. -1 for the fakes "
            "(F.binary_cross_entropy_with_logits(l_fake, -torch.ones_like(l_fake))), which is unbounded "
            "below (softplus(l) + l -> -inf as D pushes the logits down); or a loss that is not the one "
            "named (a WGAN loss, which may be negative, reported as a cross-entropy: then pass loss='wgan').",
            "labels 1 for real and 0 for fake with the cross-entropy (-1 and +1 belong to hinge and "
            "least-squares losses), or the losses of gan_tutorial.losses.",
        )
    return None


def check_no_gradient(history: History, player: str) -> Finding | None:
    """``grad_G`` (``player="G"``) or ``grad_D`` (``"D"``) exactly 0 at half of the logged steps
    or more: the optimiser's step had no gradient to apply, so that player never moved. (A step
    skipped now and then by fp16 loss scaling also logs 0, but not at half the steps.)"""
    if player not in ("G", "D"):
        raise ValueError(f"player must be 'G' or 'D', got {player!r}")
    history = checked_history(history)
    values = series(history, f"grad_{player}")
    if values is None:
        return None
    zeros = sum(1 for v in values if v == 0)
    if zeros * 2 < len(values):
        return None
    if player == "G":
        cause = (
            "the G step cuts G's loss from G: D(G(z).detach()) (a detach copied from the D step), G(z) made "
            "under torch.no_grad(), or G's parameters frozen (requires_grad False); or opt_G.zero_grad() "
            "between loss_G.backward() and opt_G.step()."
        )
        fix = (
            "in the G step: opt_G.zero_grad(); loss_G = loss(D(G(z))) with no detach; loss_G.backward(); "
            "opt_G.step(). Detach the fakes in the D step only."
        )
    else:
        cause = (
            "opt_D.zero_grad() between loss_D.backward() and opt_D.step(), which erases the gradient before "
            "the step; or D's loss computed under torch.no_grad() or from detached outputs of D."
        )
        fix = "opt_D.zero_grad(); loss_D.backward(); opt_D.step(), in that order."
    return Finding(
        f"no_gradient_{player}",
        f"grad_{player} was exactly 0 at {zeros} of {len(values)} logged steps "
        f"({span(history, 0, len(values))}): {player}'s optimiser stepped with no gradient, and {player} "
        "did not move.",
        cause,
        fix,
    )


def check_d_rates_fakes_real(history: History, loss: str | GANLoss | None = None) -> Finding | None:
    """D calls the fakes real (cross-entropy games, where d_fake is a probability): over the last
    third of the run its mean d_fake is at least 0.9, or it rates the fakes above the reals
    (d_fake > d_real) at three quarters of the logged steps after the first tenth. A D trained
    against the fakes does neither for long. Skipped for raw scores (LSGAN, WGAN): a critic in a
    brief run often trails G for a while, and scores have no scale to set a threshold on."""
    history = checked_history(history)
    real, fake = series(history, "d_real"), series(history, "d_fake")
    if loss_kind(loss) != "cross_entropy" or real is None or fake is None or len(fake) < MIN_STEPS:
        return None
    start = len(fake) // 10
    above = sum(1 for r, f in zip(real[start:], fake[start:], strict=True) if f > r)
    late_real, late_fake = mean(last_third(real)), mean(last_third(fake))
    preferred = above >= 0.75 * (len(fake) - start)
    if late_fake < 0.9 and not preferred:
        return None
    w = len(fake) - len(last_third(fake))
    evidence = (
        f"over {span(history, w, len(fake))} the mean d_fake was {late_fake:.3f}"
        f"{' (D calls the fakes real)' if late_fake >= 0.9 else ''} and the mean d_real {late_real:.3f}"
    )
    if preferred:
        evidence += (
            f"; d_fake > d_real at {above} of the {len(fake) - start} logged steps after the first tenth"
        )
    loss_D = series(history, "loss_D")
    if loss_D is not None:
        evidence += (
            f"; loss_D went from {loss_D[0]:.3g} to {mean(last_third(loss_D)):.3g} (log 4 = 1.39 at a tie)"
        )
    return Finding(
        "d_rates_fakes_real",
        evidence + ".",
        "D is not trained against the fakes: the optimisers swapped (opt_D built on G.parameters() and "
        "opt_G on D.parameters(), so each player follows the other's gradient), D's step applying no "
        "gradient (see no_gradient_D), or the labels swapped (fakes labelled 1 in D's loss).",
        "build each optimiser on its own player's parameters (opt_D = Adam(D.parameters()), opt_G = "
        "Adam(G.parameters())), and label the reals 1 and the fakes 0 in D's loss.",
    )


def check_d_wins(history: History, loss: str | GANLoss | None = None) -> Finding | None:
    """D wins outright (cross-entropy games): over the last third of the run mean d_real >= 0.95
    and mean d_fake <= 0.05, while G's loss has climbed above where it started. G then gets
    little gradient (the minimax loss saturates) or a gradient that no longer helps."""
    history = checked_history(history)
    if loss_kind(loss) != "cross_entropy":
        return None
    real, fake, loss_G = (series(history, key) for key in ("d_real", "d_fake", "loss_G"))
    if real is None or fake is None or loss_G is None or len(fake) < MIN_STEPS:
        return None
    late_real, late_fake = mean(last_third(real)), mean(last_third(fake))
    early_G, late_G = mean(loss_G[: len(last_third(loss_G))]), mean(last_third(loss_G))
    if not (late_real >= 0.95 and late_fake <= 0.05 and late_G > early_G):
        return None
    w = len(fake) - len(last_third(fake))
    return Finding(
        "d_wins",
        f"over {span(history, w, len(fake))} the mean d_real was {late_real:.3f} and the mean d_fake "
        f"{late_fake:.3f}: D separates real from fake almost perfectly, and loss_G rose from {early_G:.3g} "
        f"(first third) to {late_G:.3g}.",
        "G is not keeping up: G receiving no gradient (see no_gradient_G), G's learning rate far below "
        "D's, too many D steps per G step, the minimax G loss (it saturates once D rejects the fakes), or "
        "G unable to reach the data (see data_range).",
        "fix any no_gradient_G first; otherwise use the non-saturating G loss, equal learning rates and "
        "k = 1, or weaken D (dropout, fewer units).",
    )
