import numpy as np

from geo_risk.predict import taper


def test_taper_overlapping_windows_blend_to_constant():
    size, overlap = 16, 4
    w = taper(size, overlap)
    assert w.shape == (size, size) and w.min() > 0 and w.max() == 1
    # two windows overlapping by `overlap` px: weights stay positive everywhere and the blend of a
    # constant is that constant
    total = np.zeros(size * 2 - overlap)
    val = np.zeros_like(total)
    for start in (0, size - overlap):
        total[start:start + size] += w[size // 2]
        val[start:start + size] += 3.0 * w[size // 2]
    np.testing.assert_allclose(val / total, 3.0)
