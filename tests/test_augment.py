"""DiffAugment's transforms and ADA's controller (gan_tutorial.augment, chapter 8)."""

from __future__ import annotations

import pytest
import torch

from gan_tutorial.augment import OPS, AdaptiveP, Augment, Params


def dot(y: int, x: int, size: int = 28) -> torch.Tensor:
    img = torch.full((1, 1, size, size), -1.0)
    img[0, 0, y, x] = 1.0
    return img


def params(b=1, brightness=0.0, contrast=1.0, shift=(0, 0), cutout=(0, 0, 0)) -> Params:
    return Params(
        torch.full((b,), brightness), torch.full((b,), contrast),
        torch.tensor([shift] * b), torch.tensor([cutout] * b),
    )  # fmt: skip


def test_p_zero_is_the_identity_and_p_one_changes_every_image():
    x = torch.rand(16, 1, 28, 28) * 2 - 1
    assert torch.equal(Augment(p=0.0)(x), x)
    out = Augment(p=1.0)(x, torch.Generator().manual_seed(0))
    assert all(not torch.equal(a, b) for a, b in zip(out, x, strict=True))


def test_translation_moves_each_image_by_its_shift_and_fills_with_zero():
    out = Augment().apply(dot(10, 10), params(shift=(2, -3)))
    assert out[0, 0, 12, 7] == 1.0 and (out == 1.0).sum() == 1
    assert torch.all(out[0, 0, :, -3:] == 0)  # the uncovered columns on the right: filled with 0
    assert torch.all(out[0, 0, :2, :] == 0)  # and the two uncovered rows at the top


def test_cutout_zeroes_a_square_of_half_the_side():
    x = torch.full((1, 1, 28, 28), 0.5)
    out = Augment().apply(x, params(cutout=(1, 14, 14)))
    assert (out == 0).sum() == 14 * 14 and out[0, 0, 14, 14] == 0 and out[0, 0, 0, 0] == 0.5
    assert torch.equal(Augment().apply(x, params(cutout=(0, 14, 14))), x)  # off


def test_brightness_and_contrast_follow_their_formulas():
    x = torch.rand(1, 1, 28, 28) * 2 - 1
    torch.testing.assert_close(Augment().apply(x, params(brightness=0.3)), x + 0.3)
    mean = x.mean()
    torch.testing.assert_close(Augment().apply(x, params(contrast=1.4)), (x - mean) * 1.4 + mean)


def test_the_same_draws_transform_a_pair_alike_and_a_seed_repeats_them():
    aug = Augment()
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    p = aug.draw(x, torch.Generator().manual_seed(3))
    assert torch.equal(aug.apply(x, p), aug.apply(x.clone(), p))
    again = aug.draw(x, torch.Generator().manual_seed(3))
    assert all(torch.equal(a, b) for a, b in zip(vars(p).values(), vars(again).values(), strict=True))
    state = torch.get_rng_state()
    aug(x, torch.Generator().manual_seed(1))
    assert torch.equal(state, torch.get_rng_state())  # a given generator leaves the global one alone


def test_gradients_flow_through_every_transform():
    aug = Augment()
    x = (torch.rand(4, 1, 12, 12, dtype=torch.double) * 2 - 1).requires_grad_(True)
    p = aug.draw(x, torch.Generator().manual_seed(0))
    assert torch.autograd.gradcheck(lambda t: aug.apply(t, p), (x,))
    aug.apply(x, p).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_ada_moves_p_towards_the_target_by_the_images_seen():
    ada = AdaptiveP(target=0.6, interval=4, images_to_one=1000)
    for _ in range(3):
        ada.observe(torch.ones(32))
        assert not ada.update()
    ada.observe(torch.ones(32))
    assert ada.update() and ada.r_t == 1.0 and ada.p == pytest.approx(128 / 1000)
    for _ in range(4):  # D unsure on its training images: r_t = 0 < 0.6, p goes back down
        ada.observe(torch.tensor([1.0, -1.0] * 16))
    ada.update()
    assert ada.r_t == 0.0 and ada.p == pytest.approx(0.0)
    for _ in range(4):
        ada.observe(-torch.ones(32))
    ada.update()
    assert ada.p == 0.0  # clamped
    restored = AdaptiveP()
    restored.load_state_dict(ada.state_dict())
    assert restored.p == ada.p and restored.r_t == ada.r_t


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Augment(ops=("rotate",)), "unknown augmentation"),
        (lambda: Augment(p=1.5), "p must be in"),
        (lambda: Augment().draw(torch.zeros(28, 28)), "expected images"),
        (lambda: Augment().apply(torch.zeros(2, 1, 28, 28), params(b=3)), "parameters for 3 images"),
        (lambda: AdaptiveP(target=1.5), "0 < target < 1"),
    ],
)
def test_bad_input_is_refused_with_the_reason(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_ops_are_the_four_grey_image_transforms():
    assert OPS == ("brightness", "contrast", "translation", "cutout")


# -- a class-balanced subset (data.balanced_subset) -------------------------------------------------


def test_balanced_subset_takes_each_class_equally_and_repeats_with_its_seed():
    from gan_tutorial.data import balanced_subset

    labels = torch.arange(1000) % 10
    idx = balanced_subset(labels, 600, seed=0)
    assert len(idx) == 600 == len(set(idx.tolist())) and torch.equal(idx, idx.sort().values)
    assert torch.bincount(labels[idx], minlength=10).tolist() == [60] * 10
    assert torch.equal(idx, balanced_subset(labels, 600, seed=0))
    assert not torch.equal(idx, balanced_subset(labels, 600, seed=1))
    counts = torch.bincount(labels[balanced_subset(labels, 25, seed=0)], minlength=10)
    assert counts.sum() == 25 and set(counts.tolist()) == {2, 3}


@pytest.mark.parametrize(
    "n, message", [(9, "between 10"), (1001, "between 10"), (1000, "fewer than its share")]
)
def test_balanced_subset_refuses_what_it_cannot_draw(n, message):
    from gan_tutorial.data import balanced_subset

    labels = torch.cat([torch.arange(990) % 10, torch.zeros(10, dtype=torch.long)])  # class 0 has more
    with pytest.raises(ValueError, match=message):
        balanced_subset(labels, n, seed=0)
