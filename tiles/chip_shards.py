"""The chip store's shard files (Zarr v3, sharded along the chips, one inner chunk per chip): written as
zarr-python writes them without its write path (:class:`ChipShards`), and read chip by chip with each shard's
index kept (:func:`chip_reader`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import google_crc32c
import numcodecs
import numpy as np
import zarr
from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec, ShardingCodec

from geo_risk_errors import ChipStoreError

#: a shard index's (offset, length) pair of an inner chunk left out
_NO_CHUNK = np.iinfo(np.uint64).max
_SHUFFLE = {"noshuffle": numcodecs.Blosc.NOSHUFFLE, "shuffle": numcodecs.Blosc.SHUFFLE,
            "bitshuffle": numcodecs.Blosc.BITSHUFFLE}


class ChipShards:
    """The bytes of a Zarr v3 array sharded along its first (chip) axis, one inner chunk per chip, as
    zarr-python writes them, without its write path (which cost 1.3–1.9 s of CPU for the demo's 434 chips
    where encoding them with numcodecs cost 0.33 s): :meth:`encode` is a chip's inner chunk (its little-endian
    bytes through the array's Blosc compressor), or None for a chip of the fill value only (left out: it reads
    back as the fill value); :meth:`assemble` is a shard file (the chunks one after another, then the index of
    (offset, length) pairs, little-endian uint64, 2⁶⁴ − 1 for a chunk left out, then the index's CRC32C), or
    None when all its chunks are left out (so is the file); :meth:`key` is shard ``s``'s file under the array's
    folder.

    Only the layout :func:`tiles.chip_store.write_chip_store` creates is accepted (:meth:`holds`); zarr-python reading these files
    back bit for bit, and writing the same bytes itself, is tested (tests/tiles/test_chip_store.py)."""

    def __init__(self, array: zarr.Array):
        meta = array.metadata
        if not self.holds(array):
            raise RuntimeError(f"chip array {array.path}: not one Blosc-compressed inner chunk per chip in shards "
                               f"with their index at the end ({getattr(meta, 'codecs', meta)}); write_chip_store "
                               "creates no other")
        sharding = meta.codecs[0]
        serializer, blosc = sharding.codecs
        self.compressor = numcodecs.Blosc(cname=blosc.cname.value, clevel=blosc.clevel, shuffle=_SHUFFLE[
            blosc.shuffle.value], blocksize=blosc.blocksize, typesize=blosc.typesize)
        little = serializer.endian is None or serializer.endian.value == "little"
        self.dtype = np.dtype(meta.dtype.to_native_dtype()).newbyteorder("<" if little else ">")
        self.fill = self.dtype.type(meta.fill_value)
        self.nan_fill = self.dtype.kind == "f" and np.isnan(self.fill)
        self.per_shard = int(meta.chunk_grid.chunk_shape[0])
        self.chunk_shape = tuple(int(d) for d in meta.shape[1:])
        self._rest = (0,) * (len(meta.shape) - 1)
        self._encode_key = meta.encode_chunk_key

    @staticmethod
    def holds(array: zarr.Array) -> bool:
        """Whether ``array`` has the layout :func:`tiles.chip_store.write_chip_store` writes (zarr v3, sharded along the chips,
        one inner chunk per chip: its bytes, then Blosc; the shard index at the end, with its CRC32C)."""
        meta = array.metadata
        sharding = meta.codecs[0] if len(getattr(meta, "codecs", ())) == 1 else None
        return (isinstance(sharding, ShardingCodec) and tuple(sharding.chunk_shape) == (1, *meta.shape[1:])
                and sharding.index_location.value == "end"
                and sharding.index_codecs == (BytesCodec(endian="little"), Crc32cCodec())
                and len(sharding.codecs) == 2 and isinstance(sharding.codecs[0], BytesCodec)
                and isinstance(sharding.codecs[1], BloscCodec))

    def encode(self, chip: np.ndarray) -> bytes | None:
        data = np.ascontiguousarray(chip, dtype=self.dtype)
        if np.isnan(data).all() if self.nan_fill else (data == self.fill).all():
            return None
        return bytes(self.compressor.encode(data))

    def assemble(self, chunks: list[bytes | None]) -> bytes | None:
        index = np.full((self.per_shard, 2), _NO_CHUNK, dtype="<u8")
        parts, offset = [], 0
        for k, chunk in enumerate(chunks):
            if chunk is not None:
                index[k] = offset, len(chunk)
                offset += len(chunk)
                parts.append(chunk)
        if not parts:
            return None
        raw = index.tobytes()
        return b"".join([*parts, raw, np.array([google_crc32c.value(raw)], dtype="<u4").tobytes()])

    def key(self, s: int) -> str:
        return self._encode_key((s, *self._rest))


def chip_reader(array: zarr.Array) -> Callable[[int], np.ndarray]:
    """``read(j)``: chip ``j`` of a chip-store array, as ``array[j]`` gives it.

    For the sharded layout :func:`tiles.chip_store.write_chip_store` writes, in a local folder, it reads the chip's own bytes
    only, with each shard's index read once and kept (and read again if the shard file changes): zarr-python
    reads the index again for every chip, which made a chip's read twice as slow as from the one-file-per-chip
    store before (7.2 against 3.8 ms for its five arrays, measured). Any other array (an older store's, or
    one not on a local disk) is read by zarr."""
    root = getattr(array.store, "root", None)
    if root is None or not ChipShards.holds(array):
        return array.__getitem__
    return ShardedChipReader(ChipShards(array), Path(root) / array.path)


class ShardedChipReader:
    """:func:`chip_reader` for a sharded chip array in the folder ``folder``."""

    def __init__(self, shards: ChipShards, folder: Path):
        self.shards, self.folder = shards, folder
        self.index_size = 16 * shards.per_shard + 4
        self.dtype = shards.dtype.newbyteorder("=")  # what zarr returns: the native byte order
        self.indexes: dict[int, tuple[tuple, np.ndarray]] = {}  # shard → (its file's identity, its index)

    def __call__(self, j: int) -> np.ndarray:
        sh = self.shards
        s, k = divmod(int(j), sh.per_shard)
        out = np.empty(sh.chunk_shape, dtype=sh.dtype)
        path = self.folder / sh.key(s)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # a shard of chips of the fill value only
            out.fill(sh.fill)
            return out.astype(self.dtype, copy=False)
        try:
            st = os.fstat(fd)
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
            known = self.indexes.get(s)
            if known is None or known[0] != stamp:
                tail = os.pread(fd, self.index_size, max(0, st.st_size - self.index_size))
                raw, crc = tail[:-4], tail[-4:]
                if len(tail) != self.index_size or google_crc32c.value(raw) != int.from_bytes(crc, "little"):
                    raise ChipStoreError(f"chip store shard {path} is damaged (its index's checksum differs) — run "
                                         "`geo-risk tile CONFIG` again to rebuild the chip store")
                known = self.indexes[s] = stamp, np.frombuffer(raw, dtype="<u8").reshape(sh.per_shard, 2)
            offset, length = (int(v) for v in known[1][k])
            if offset == _NO_CHUNK:  # a chip of the fill value only
                out.fill(sh.fill)
            else:
                data = os.pread(fd, length, offset)  # a Blosc frame: its header holds its sizes, decoded then stored
                if len(data) < 16 or int.from_bytes(data[4:8], "little") != out.nbytes or int.from_bytes(
                        data[12:16], "little") != length:
                    raise ChipStoreError(f"chip store shard {path} is damaged (chip {j}'s bytes are cut short) — "
                                         "run `geo-risk tile CONFIG` again to rebuild the chip store")
                sh.compressor.decode(data, out=out)
        finally:
            os.close(fd)
        return out.astype(self.dtype, copy=False)
