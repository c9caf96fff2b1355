"""Atomic outputs: write under a temporary name beside the target, rename into place on success.

A failed or interrupted stage therefore never leaves a half-written file or folder. Temporary
names carry the writer's pid and host (``.<name>.staging-<pid>-<host>-<random>``; ``aside``
instead of ``staging`` for an old copy kept during the swap), so the leftovers of a killed
process are recognised and removed by the next write to the same target, and an old folder set
aside by a writer killed before its swap is put back.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import secrets
import shutil
import socket
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

STAGING, ASIDE = "staging", "aside"
#: short tag of this machine, so a run folder shared between machines is never cleaned by the wrong one
HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _prefix(path: Path, kind: str) -> str:
    return f".{path.name}.{kind}-{os.getpid()}-{HOST}-"


def target_of(path: str | Path) -> Path:
    """The target a temporary name of this module stands for, e.g. in an error message; else ``path``."""
    p = Path(path)
    m = re.match(rf"^\.(.+)\.(?:{STAGING}|{ASIDE})-\d+-[0-9a-f]{{8}}-", p.name)
    return p.with_name(m.group(1)) if m else p


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def _leftovers(path: Path, kind: str) -> list[Path]:
    """Temporary names of ``kind`` for ``path`` whose writing process is no longer alive."""
    head = f".{path.name}.{kind}-"
    out = []
    for p in path.parent.glob(f"{glob.escape(head)}*"):
        pid, _, rest = p.name[len(head):].partition("-")
        if (pid.isdigit() and rest.startswith(f"{HOST}-") and int(pid) != os.getpid()
                and not _pid_alive(int(pid))):
            out.append(p)
    return sorted(out, key=_mtime, reverse=True)


def _mtime(p: Path) -> float:
    try:
        return p.lstat().st_mtime
    except OSError:  # removed meanwhile by another writer's cleanup
        return 0.0


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists() or p.is_symlink():
        p.unlink(missing_ok=True)


def clean_stale(path: Path) -> None:
    """Remove the temporary names of dead writers to ``path``; restore an old copy set aside if ``path`` is gone."""
    path = Path(path)
    if not path.parent.is_dir():
        return
    for stale in _leftovers(path, STAGING):
        _remove(stale)
    for aside in _leftovers(path, ASIDE):
        if not path.exists() and not path.is_symlink():
            try:
                os.replace(aside, path)  # the newest copy set aside: its writer died before the swap
            except FileNotFoundError:  # restored meanwhile by another writer
                pass
        else:
            _remove(aside)


def _staging_file(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=_prefix(path, STAGING), suffix=path.suffix, dir=path.parent)
    os.close(fd)
    return Path(tmp)


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path that replaces ``path`` only if the block succeeds."""
    with atomic_files([path]) as (tmp,):
        yield tmp


@contextmanager
def atomic_files(paths: Sequence[Path]) -> Iterator[list[Path]]:
    """Yield temporary paths, one per target, renamed into place together only if the block succeeds.

    If a rename fails midway, the targets already replaced get their previous content back (or are
    removed when they had none), so the targets change as a set or not at all.
    """
    paths = [Path(p) for p in paths]
    if len(set(paths)) != len(paths):
        raise ValueError(f"atomic_files: the same target is given twice in {paths}")
    with ExitStack() as cleanup:
        tmps = []
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            clean_stale(path)
            tmp = _staging_file(path)
            cleanup.callback(tmp.unlink, missing_ok=True)
            tmps.append(tmp)
        yield tmps
        mode = 0o666 & ~_umask()  # mkstemp makes 0600; give the usual permissions
        for tmp in tmps:
            os.chmod(tmp, mode)
        _swap_all(list(zip(tmps, paths)))


def _set_aside(path: Path) -> Path | None:
    """Keep the old ``path`` under an aside name: a hard link for a file (it stays in place), a
    rename for a folder (a folder cannot be replaced by rename). None when there is no old one."""
    if not (path.exists() or path.is_symlink()):
        return None
    aside = path.parent / f"{_prefix(path, ASIDE)}{secrets.token_hex(4)}"
    if path.is_file() and not path.is_symlink():
        try:
            os.link(path, aside)
            return aside
        except OSError:  # a filesystem without hard links
            pass
    os.replace(path, aside)
    return aside


def _swap_all(pairs: list[tuple[Path, Path]]) -> None:
    """Move each old target aside and rename the new one in; on failure put the old ones back."""
    done: list[tuple[Path, Path | None]] = []  # (target replaced, its old copy set aside or None)
    try:
        for tmp, path in pairs:
            aside = _set_aside(path)
            try:
                os.replace(tmp, path)
            except BaseException:
                if aside is not None:
                    os.replace(aside, path)
                raise
            done.append((path, aside))
    except BaseException:
        for path, aside in reversed(done):
            if aside is not None:
                os.replace(aside, path)
            else:
                _remove(path)
        raise
    for _, aside in done:
        if aside is not None:
            _remove(aside)


@contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a temporary folder that replaces the folder ``path`` only if the block succeeds.

    The old folder is renamed aside, the new one renamed in, then the old one deleted: an
    interruption between the renames leaves the old folder under its aside name, and the next
    write to ``path`` puts it back.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path)
    tmp = Path(tempfile.mkdtemp(prefix=_prefix(path, STAGING), dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        _swap_all([(tmp, path)])
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
