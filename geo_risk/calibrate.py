"""Probability calibration: temperature scaling fitted on validation logits."""

from __future__ import annotations

import torch


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, max_iter: int = 100,
                    weights: torch.Tensor | None = None) -> float:
    """The temperature T > 0 minimising the NLL of ``sigmoid(logits / T)`` (Guo et al., 2017).

    ``logits`` and ``labels`` are flat tensors of valid pixels, ``weights`` their optional sampling
    weights (a weighted NLL). Returns 1.0 when there is nothing to fit (no pixels, or a single class).
    """
    logits = logits.detach().double().flatten()
    labels = labels.detach().double().flatten()
    w = None if weights is None else weights.detach().double().flatten()
    if logits.numel() == 0 or labels.min() == labels.max():
        return 1.0
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits / log_t.exp(), labels, weight=w)
        loss.backward()
        return loss

    opt.step(closure)
    t = float(log_t.detach().exp())
    return t if 1e-3 < t < 1e3 else 1.0
