import torch

from geo_risk.calibrate import fit_temperature


def test_recovers_known_temperature():
    g = torch.Generator().manual_seed(0)
    true_logits = torch.randn(20000, generator=g) * 3
    labels = torch.bernoulli(torch.sigmoid(true_logits), generator=g)
    overconfident = true_logits * 2.5  # a model 2.5× too sure of itself
    t = fit_temperature(overconfident, labels)
    assert abs(t - 2.5) < 0.2


def test_single_class_returns_identity():
    assert fit_temperature(torch.randn(100), torch.zeros(100)) == 1.0
