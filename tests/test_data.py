import numpy as np
import pytest

from geo_risk.data import d4


@pytest.mark.parametrize("k", range(4))
@pytest.mark.parametrize("flip", [False, True])
def test_d4_moves_every_aligned_array_the_same_way(k, flip):
    rng = np.random.default_rng(k)
    label = (rng.random((1, 6, 6)) < 0.3).astype(np.uint8)
    image = np.concatenate([label.astype(np.float32), rng.random((2, 6, 6)).astype(np.float32)])
    zone = (label * 7).astype(np.int16)
    out_image, out_label, out_zone = d4([image, label, zone], k, flip)
    np.testing.assert_array_equal(out_image[0], out_label[0])
    np.testing.assert_array_equal(out_zone, out_label * 7)
    assert out_image.shape == image.shape and out_image.flags["C_CONTIGUOUS"]


def test_d4_gives_eight_distinct_transforms():
    a = np.arange(16).reshape(1, 4, 4)
    seen = {d4([a], k, f)[0].tobytes() for k in range(4) for f in (False, True)}
    assert len(seen) == 8
