"""tiles.atomic: all-or-nothing outputs, recoverable swaps, and cleanup after a killed writer."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

import tiles.atomic as atomic
from tiles.atomic import atomic_dir, atomic_file, atomic_files, clean_stale


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def make_tiles(path: Path, text: str) -> None:
    path.mkdir()
    (path / "part.txt").write_text(text)


def test_dir_replaces_old_folder_and_leaves_nothing_hidden(tmp_path):
    target = tmp_path / "tiles"
    make_tiles(target, "old")
    with atomic_dir(target) as tmp:
        assert f".tiles.staging-{os.getpid()}-" in tmp.name
        (tmp / "part.txt").write_text("new")
    assert (target / "part.txt").read_text() == "new"
    assert hidden(tmp_path) == []


def test_dir_failure_keeps_old_folder(tmp_path):
    target = tmp_path / "tiles"
    make_tiles(target, "old")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "part.txt").write_text("half")
        raise RuntimeError("stage failed")
    assert (target / "part.txt").read_text() == "old"
    assert hidden(tmp_path) == []


def test_failure_between_aside_and_swap_restores_old_folder(tmp_path, monkeypatch):
    """The rename of the new folder fails after the old one was moved aside: the old one comes back."""
    target = tmp_path / "tiles"
    make_tiles(target, "old")
    real_replace, renamed = os.replace, []

    def failing_replace(src, dst):
        if ".staging-" in os.fspath(src):
            assert not target.exists()  # the old folder is aside at this point
            raise OSError(errno.EIO, "simulated failure during the swap", os.fspath(dst))
        renamed.append((Path(src).name, Path(dst).name))
        return real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", failing_replace)
    with pytest.raises(OSError, match="simulated"), atomic_dir(target) as tmp:
        (tmp / "part.txt").write_text("new")
    assert [src for src, _ in renamed] == ["tiles", renamed[0][1]]  # aside, then back
    assert ".tiles.aside-" in renamed[0][1]
    assert (target / "part.txt").read_text() == "old"
    assert hidden(tmp_path) == []


def test_kill_between_aside_and_swap_is_recovered_by_next_write(tmp_path):
    """A writer killed right after moving the old folder aside: the old tiles are still on disk
    under the aside name, and the next atomic write to the same target puts them back first."""
    target, pid = tmp_path / "tiles", dead_pid()
    make_tiles(target, "old")
    aside = tmp_path / f".tiles.aside-{pid}-{atomic.HOST}-dead"
    staging = tmp_path / f".tiles.staging-{pid}-{atomic.HOST}-dead"
    os.replace(target, aside)
    make_tiles(staging, "new, never swapped in")
    assert not target.exists()
    assert (aside / "part.txt").read_text() == "old"  # recoverable by hand too

    clean_stale(target)
    assert (target / "part.txt").read_text() == "old"
    assert hidden(tmp_path) == []


def test_stale_staging_of_dead_writer_is_removed_live_ones_kept(tmp_path):
    target, pid = tmp_path / "risk.tif", dead_pid()
    target.write_text("old")
    dead_file = tmp_path / f".risk.tif.staging-{pid}-{atomic.HOST}-x.tif"
    dead_aside = tmp_path / f".risk.tif.aside-{pid}-{atomic.HOST}-x"
    live = tmp_path / f".risk.tif.staging-{os.getppid()}-{atomic.HOST}-x.tif"  # a living process
    other_host = tmp_path / f".risk.tif.staging-{pid}-ffffffff-x.tif"
    unrelated = tmp_path / ".risk.tif.notes"
    for p in (dead_file, dead_aside, live, other_host, unrelated):
        p.write_text("x")
    with atomic_file(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert not dead_file.exists() and not dead_aside.exists()  # the old target exists: aside is stale
    assert live.exists() and other_host.exists() and unrelated.exists()


def test_stale_staging_folder_removed_when_dir_write_starts(tmp_path):
    target, pid = tmp_path / "tiles", dead_pid()
    stale = tmp_path / f".tiles.staging-{pid}-{atomic.HOST}-abc"
    make_tiles(stale, "half")
    with atomic_dir(target) as tmp:
        assert not stale.exists()
        (tmp / "part.txt").write_text("new")
    assert hidden(tmp_path) == []


def test_file_gets_usual_permissions(tmp_path):
    with atomic_file(tmp_path / "a.csv") as tmp:
        tmp.write_text("x")
    mode = (tmp_path / "a.csv").stat().st_mode & 0o777
    assert mode == 0o666 & ~atomic._umask()


def test_files_renamed_in_together(tmp_path):
    a, b = tmp_path / "decision.tif", tmp_path / "expected_cost.tif"
    a.write_text("old a")
    with atomic_files([a, b]) as (ta, tb):
        ta.write_text("new a")
        tb.write_text("new b")
        assert a.read_text() == "old a" and not b.exists()  # nothing visible before the block ends
    assert a.read_text() == "new a" and b.read_text() == "new b"
    assert hidden(tmp_path) == []


def test_files_failure_in_block_changes_nothing(tmp_path):
    a, b = tmp_path / "decision.tif", tmp_path / "expected_cost.tif"
    a.write_text("old a")
    with pytest.raises(OSError), atomic_files([a, b]) as (ta, tb):
        ta.write_text("new a")
        raise OSError(errno.ENOSPC, "No space left on device", str(tb))
    assert a.read_text() == "old a" and not b.exists()
    assert hidden(tmp_path) == []


@pytest.mark.parametrize("b_existed", [True, False])
def test_files_rename_failing_midway_restores_the_ones_swapped(tmp_path, monkeypatch, b_existed):
    a, b, c = tmp_path / "a.tif", tmp_path / "b.tif", tmp_path / "c.tif"
    a.write_text("old a")
    if b_existed:
        b.write_text("old b")
    real_replace = os.replace

    def failing_replace(src, dst):
        if Path(dst) == c:
            raise OSError(errno.ENOSPC, "No space left on device", os.fspath(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", failing_replace)
    with pytest.raises(OSError, match="No space"), atomic_files([a, b, c]) as tmps:
        for t, text in zip(tmps, ("new a", "new b", "new c")):
            t.write_text(text)
    assert a.read_text() == "old a"
    assert (b.read_text() == "old b") if b_existed else not b.exists()
    assert not c.exists()
    assert hidden(tmp_path) == []


def test_files_refuse_a_target_twice(tmp_path):
    with pytest.raises(ValueError, match="twice"), atomic_files([tmp_path / "a", tmp_path / "a"]):
        pass
