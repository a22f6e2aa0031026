r"""The Inception Score of Salimans et al. 2016, with any classifier (chapter 5).

For class probabilities :math:`p(y \mid x)` of generated images and their average over the
samples :math:`p(y) = \mathbb{E}_x\, p(y \mid x)`,

.. math:: \mathrm{IS} = \exp\Big( \mathbb{E}_x\, \mathrm{KL}\big(p(y \mid x) \,\|\, p(y)\big) \Big)
          = \exp\big( H(y) - \mathbb{E}_x H(y \mid x) \big),

high when every sample is classified confidently (low :math:`H(y \mid x)`) and the classes are
used evenly (high :math:`H(y)`). It lies between 1 and the number of classes K: 10 with the MNIST
judge, whose probabilities stand in for Inception's here. It looks at the samples alone, never
at real data. As usual, the N samples may be cut into ``splits`` groups, scored apart, and the
mean and standard deviation over groups reported (torchmetrics' and the original code's 10).
The original code (Salimans et al.'s) cuts consecutive groups, as this function does, and
reports numpy's population standard deviation; torchmetrics shuffles the samples first and
reports the unbiased standard deviation, as this function does. The score grows with the
group size (Barratt and Sharma 2018), so scores are comparable only at equal N and ``splits``.
"""

from __future__ import annotations

import torch


def inception_score(probs: torch.Tensor, splits: int = 1) -> tuple[float, float]:
    """``(mean, std)`` of the IS of class probabilities ``probs`` (N, K) over ``splits`` consecutive
    groups of samples, of sizes that differ by at most one (std 0 for one group). Computed in
    float64, with 0 log 0 = 0. (torchmetrics cuts with ``chunk``, which makes fewer groups than
    asked when N is not a multiple of ``splits``; the two agree when it is.)"""
    if probs.ndim != 2 or probs.shape[0] < splits or splits < 1:
        raise ValueError(
            f"probs must be (N, K) with N >= splits >= 1, got {tuple(probs.shape)}, splits={splits}"
        )
    p = probs.detach().double().cpu()
    if (p < 0).any() or not torch.allclose(p.sum(1), torch.ones(len(p), dtype=torch.float64), atol=1e-4):
        raise ValueError("probs must be probabilities: non-negative rows that sum to 1 (softmax of logits)")
    scores = []
    for part in torch.tensor_split(p, splits):
        marginal = part.mean(0, keepdim=True)  # p(y), (1, K)
        kl = (torch.xlogy(part, part) - torch.xlogy(part, marginal.expand_as(part))).sum(1)  # (n,)
        scores.append(kl.mean().exp())
    s = torch.stack(scores)
    return float(s.mean()), float(s.std()) if len(s) > 1 else 0.0
