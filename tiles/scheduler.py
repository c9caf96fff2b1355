"""Where dask work runs: this process's threads, one thread, a ``LocalCluster`` or a running ``distributed``
scheduler — chosen by the config's ``dask:`` section (``geo_risk.config.DaskConfig``) or ``--scheduler``.

``use_scheduler(cfg.dask)`` is a context manager: every dask computation inside it (``.compute()``,
``dask.compute``, ``to_zarr``) runs on that scheduler, and whatever it opened (cluster, client) is closed
on the way out. It yields the ``distributed.Client`` or None (threads, synchronous).

Workers of a cluster read the inputs and write the stores themselves: they must see the data folder and
the run folder at the same paths (a ``LocalCluster`` does; for an address, a shared file system —
:func:`check_workers_see` says which worker does not). ``tiles`` knows nothing of the application's
config: ``cfg`` is anything with the attributes of :class:`SchedulerSettings`.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import dask

from tiles.errors import SchedulerError

log = logging.getLogger(__name__)

#: the schedulers of this process; anything else is a distributed scheduler's address
LOCAL = ("threads", "synchronous")
_SETTINGS = ("scheduler", "workers", "threads_per_worker", "memory_limit", "connect_timeout_s")
#: the settings and client of the :func:`use_scheduler` blocks entered, innermost last
_ACTIVE: list[tuple[tuple, object | None]] = []


class SchedulerSettings(Protocol):
    """What :func:`use_scheduler` reads (``geo_risk.config.DaskConfig`` has these)."""

    scheduler: str
    workers: int | None
    threads_per_worker: int
    memory_limit: str
    connect_timeout_s: float


def _dashboard_available() -> bool:
    try:
        import bokeh  # noqa: F401
    except ImportError:
        return False
    return True


def _distributed():
    try:
        import distributed
    except ImportError:  # a dependency of geo-risk; only a partial install lacks it
        raise SchedulerError("dask.scheduler: a LocalCluster or a scheduler address needs the `distributed` package — "
                             "`pip install distributed` (the version of your dask), or use dask.scheduler: "
                             "threads") from None
    return distributed


@contextmanager
def use_scheduler(cfg: SchedulerSettings) -> Iterator[object | None]:
    """Run every dask computation inside the block on ``cfg.scheduler``; yield the Client or None.

    Inside a block of the same settings (``geo-risk run`` around its stages) the outer scheduler is
    reused: one LocalCluster for the whole run. Raises SchedulerError (naming ``dask.scheduler`` and the
    fix) when an address cannot be reached.
    """
    key = tuple(getattr(cfg, k) for k in _SETTINGS)
    if _ACTIVE and _ACTIVE[-1][0] == key:
        yield _ACTIVE[-1][1]
        return
    with _opened(cfg) as client:
        _ACTIVE.append((key, client))
        try:
            yield client
        finally:
            _ACTIVE.pop()


@contextmanager
def _opened(cfg: SchedulerSettings) -> Iterator[object | None]:
    name = cfg.scheduler
    if name in LOCAL:
        log.debug("dask: %s scheduler", name)
        with dask.config.set(scheduler=name):
            yield None
        return
    distributed = _distributed()
    if not log.isEnabledFor(logging.DEBUG):  # its INFO lines (every worker started and stopped) drown the stage's
        logging.getLogger("distributed").setLevel(logging.WARNING)
    if name == "local_cluster":
        dashboard = _dashboard_available()
        cluster = distributed.LocalCluster(
            n_workers=cfg.workers, threads_per_worker=cfg.threads_per_worker, memory_limit=cfg.memory_limit,
            processes=True, dashboard_address=":0" if dashboard else None,
        )
        try:
            client = distributed.Client(cluster, set_as_default=False)
        except BaseException:
            cluster.close()
            raise
        workers = len(client.scheduler_info(n_workers=-1)["workers"])
        log.info("dask: LocalCluster of %d worker process(es) × %d thread(s), memory limit %s each", workers,
                 cfg.threads_per_worker, cfg.memory_limit)
        if dashboard:
            log.info("dask dashboard: %s", client.dashboard_link)
        else:
            log.info("dask dashboard: not started — it needs bokeh (`pip install bokeh`)")
        to_close = (client, cluster)
    else:
        try:
            client = distributed.Client(name, timeout=cfg.connect_timeout_s, set_as_default=False)
        except (OSError, TimeoutError) as e:
            raise SchedulerError(
                f"dask.scheduler: cannot connect to the dask scheduler at {name} within {cfg.connect_timeout_s:g} s "
                f"({' '.join(str(e).split())[:200]}) — start it (`dask scheduler` there, and `dask worker {name}` on "
                "each worker machine), fix the address (--scheduler or dask.scheduler in the config), or use "
                "--scheduler threads") from None
        workers = len(client.scheduler_info(n_workers=-1)["workers"])
        log.info("dask: scheduler %s with %d worker(s)%s", name, workers,
                 f"; dashboard {client.dashboard_link}" if _dashboard_available() else "")
        if workers == 0:
            log.warning("dask: the scheduler at %s has no worker yet — the work waits until one joins "
                        "(`dask worker %s`)", name, name)
        to_close = (client,)
    try:
        with dask.config.set(scheduler=client):
            yield client
    finally:
        for thing in to_close:
            try:
                thing.close()
            except Exception as e:  # closing must not hide the error that ended the block
                log.debug("dask: closing %s: %s", type(thing).__name__, e)


def check_workers_see(client, folder: Path, inputs: list[Path] = ()) -> None:
    """Refuse a cluster whose workers do not see the files as this process does (no shared file system):
    a marker written into ``folder`` (the run folder, where they write) and the size of each of ``inputs``
    (they read them) must be the same on every worker. Nothing to check without a client."""
    if client is None:
        return
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / f".geo-risk-shared-{os.getpid()}-{secrets.token_hex(4)}"
    token = secrets.token_hex(8)
    files = [str(Path(p).resolve()) for p in inputs]
    marker.write_text(token)
    try:
        here = _what_is_seen(str(marker), files)
        seen = client.run(_what_is_seen, str(marker), files)
    finally:
        marker.unlink(missing_ok=True)
    for worker, view in sorted(seen.items()):
        if view == here:
            continue
        text, sizes = view
        missing = ([str(folder)] if text != token else []) + [f for f, a, b in zip(files, sizes, here[1]) if a != b]
        raise SchedulerError(
            f"dask.scheduler: worker {worker} does not see {', '.join(missing[:3])} as this machine does — the workers "
            "read the inputs and write the stores themselves, so they need the data folder and the run folder at "
            "the same paths (a shared file system); mount them there, or use --scheduler local_cluster on this "
            "machine")


def _what_is_seen(marker: str, files: list[str]) -> tuple[str | None, list[int | None]]:
    try:
        text = Path(marker).read_text()
    except OSError:
        text = None
    sizes = []
    for f in files:
        try:
            sizes.append(os.stat(f).st_size)
        except OSError:
            sizes.append(None)
    return text, sizes
