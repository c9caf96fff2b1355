from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rio_cogeo.cogeo import cog_validate

from geo_risk.export import write_cog

CRS3395 = CRS.from_epsg(3395)
T = Affine(30, 0, -6885690, 0, -30, 1857300)


def test_float_cog_is_valid_with_nodata_and_tags(tmp_path):
    arr = np.random.default_rng(0).random((1100, 900)).astype(np.float32)
    arr[:10] = np.nan
    out = write_cog(tmp_path / "risk.tif", arr, CRS3395, T, nodata=np.nan, tags={"units": "probability"})
    valid, errors, _ = cog_validate(str(out))
    assert valid, errors
    with rasterio.open(out) as src:
        assert src.crs == CRS3395 and src.transform == T and np.isnan(src.nodata)
        assert src.overviews(1) and src.is_tiled and src.tags()["units"] == "probability"
        np.testing.assert_array_equal(src.read(1), arr)
    assert [p.name for p in tmp_path.iterdir()] == ["risk.tif"]  # no temporary file left


def test_uint8_cog_keeps_colour_table(tmp_path):
    arr = np.zeros((600, 600), np.uint8)
    arr[100:200] = 1
    arr[:5] = 255
    cmap = {0: (200, 200, 200, 255), 1: (230, 85, 13, 255)}
    out = write_cog(tmp_path / "decision.tif", arr, CRS3395, T, nodata=255, colormap=cmap,
                    overview_resampling="nearest")
    assert cog_validate(str(out))[0]
    with rasterio.open(out) as src:
        assert src.colormap(1)[1] == (230, 85, 13, 255) and src.nodata == 255


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(Exception):
        write_cog(tmp_path / "bad.tif", np.zeros((10, 10), np.float32), "not a crs", T, nodata=0)
    assert list(tmp_path.iterdir()) == []


def test_write_into_given_path_when_not_atomic(tmp_path):
    target = tmp_path / ".staging.tif"
    target.touch()  # a temporary file made beforehand, as tiles.atomic.atomic_files does
    out = write_cog(target, np.ones((64, 64), np.float32), CRS3395, T, nodata=np.nan, atomic=False)
    assert out == target and cog_validate(str(target))[0]
    assert [p.name for p in tmp_path.iterdir()] == [".staging.tif"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="/dev/full (always 'disk full') is Linux-only")
def test_full_disk_is_an_output_error():
    from geo_risk_errors import OutputError

    with pytest.raises(OutputError, match=r"cannot write /dev/full: .*free disk space"):
        write_cog(Path("/dev/full"), np.ones((512, 512), np.float32), CRS3395, T, nodata=np.nan, atomic=False)
