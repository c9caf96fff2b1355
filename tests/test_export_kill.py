"""A process killed (SIGKILL) while it writes a COG leaves the previous file at the target, and the
next write cleans up what the killed one left."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import rasterio
from affine import Affine

from geo_risk.export import write_cog

CHILD = textwrap.dedent("""
    import sys, time
    import dask, dask.array as da, numpy as np
    from affine import Affine
    from geo_risk.export import write_cog_blocks
    from tiles.atomic import atomic_files

    def slow(block, block_info=None):
        if block_info[None]["chunk-location"] != (0, 0):
            print("writing", flush=True)
            time.sleep(60)  # killed here, half-way through the blocks
        return np.full(block.shape, 0.9, np.float32)

    lazy = da.zeros((256, 256), chunks=64, dtype=np.float32).map_blocks(slow, dtype=np.float32)
    with atomic_files([sys.argv[1]]) as (tmp,):
        write_cog_blocks(tmp, lazy, "EPSG:32620", Affine(30, 0, 0, 0, -30, 0), nodata=np.nan)
""")


def test_sigkill_during_export_keeps_the_previous_file(tmp_path):
    target = tmp_path / "risk.tif"
    transform = Affine(30, 0, 0, 0, -30, 0)
    write_cog(target, np.full((256, 256), 0.25, np.float32), "EPSG:32620", transform, nodata=np.nan)
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(target)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "writing"
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "risk.tif"]
    assert leftovers  # the killed writer's staging files are there…
    with rasterio.open(target) as src:  # …but the target is the previous, complete file
        assert (src.read(1) == 0.25).all()
    write_cog(target, np.full((256, 256), 0.5, np.float32), "EPSG:32620", transform, nodata=np.nan)
    with rasterio.open(target) as src:
        assert (src.read(1) == 0.5).all()
    assert [p.name for p in tmp_path.iterdir()] == ["risk.tif"]  # the next write removed them
