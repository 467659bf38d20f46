"""Many recordings at once: in this process, on a local process pool, or over a Ray cluster.

:func:`run_files` does one task per file. ``setup(threads)`` builds one worker's state once (it loads
the model, with that many CPU threads), ``work(state, path)`` does one file with it and writes its
outputs where the caller decided. A file whose ``work`` raises :class:`LivesubError` is reported as that
error and the others go on; any other exception is a bug and ends the run (after the workers are
stopped). One progress bar counts files, on a terminal only.

Where the work runs:

- ``workers`` 1 (or None, the default) and no Ray: in this process, one file after another.
- ``workers=N``: a pool of N processes, started with "spawn": CTranslate2 runs on GNU OpenMP
  (libgomp), which is not fork-safe. A child forked after this process had decoded with two
  threads hung for good in its first decode (measured; with "spawn" it decodes normally).
  "forkserver" starts a worker ~0.3 s sooner (1.2 s against 1.55 s to the first result, model load
  included), which is nothing next to a recording of minutes, and it leaves a server process behind.
- ``ray_address``: one Ray actor per worker, each reserving ``threads`` CPUs (``num_cpus``); files go to
  whichever actor is free. ``"auto"`` joins the running cluster if there is one (``RAY_ADDRESS``, or
  one started with ``ray start`` on this machine) or starts a local one; ``"host:6379"`` and
  ``"ray://host:10001"`` join that cluster. Only what this call started is stopped at the end.
  The workers need livesub (and its models) installed, and the files' paths must mean the same
  on every machine (shared storage).

Threads: a worker's model gets ``threads`` CPU threads, the cores divided among the workers, so that
workers x threads = cores. Two whisper-base workers of one thread each did 4 files in 11.5-18.9 s
on two cores, one worker of two threads 20.8-24.1 s, and two workers of two threads each (the
oversubscription a per-model default of "every core" gives) 14.9-21.2 s (a machine shared with
other work: ranges of three runs). The worker's numeric libraries (numpy's BLAS, OpenMP) keep to
the same count, which also makes a transcript the same wherever it was made, for a given count.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import warnings
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Generic, TypeVar

from pipeline.errors import ConfigError, LivesubError
from pipeline.outputs.progress import FilesBar

log = logging.getLogger(__name__)

S = TypeVar("S")
R = TypeVar("R")

_NO_RAY = "--ray needs Ray: pip install 'livesub[cluster]'"


def run_files(
    items: Sequence[Path],
    setup: Callable[[int], S],
    work: Callable[[S, Path], R],
    *,
    workers: int | None = None,
    threads: int | None = None,
    ray_address: str | None = None,
    skip: Callable[[Path], bool] | None = None,
    progress: bool = True,
) -> Generator[tuple[Path, R | LivesubError | None], None, None]:
    """Does ``work`` on each file, and yields ``(path, outcome)`` as each one finishes (in any order).

    The outcome is ``work``'s result, the :class:`LivesubError` the file failed with, or None for a
    file ``skip`` says is done already (these come first, in input order, and are not counted as
    work). A path given twice is done once.

    ``setup`` and ``work`` go to other processes: module-level functions (or ``functools.partial``
    of one). ``setup(threads)`` runs once per worker. Its :class:`LivesubError` (a model that will not
    load) ends the run, raised here; so does any exception of ``work`` that is not a LivesubError,
    with the worker's traceback, and a worker that dies (:class:`LivesubError`). Ctrl-C stops every
    worker and what this call started, then raises :class:`KeyboardInterrupt` here. Iterate to the
    end, or close the iterator (``contextlib.closing``) when leaving early: that stops the workers.

    ``workers``: how many at once (default: 1 here; on Ray, as many as the cluster's CPUs hold).
    ``threads``: CPU threads per worker, handed to ``setup`` and reserved on Ray (default: the cores
    divided among the workers). ``ray_address``: run on Ray (see the module's notes).
    """
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be at least 1, not {workers}")
    if threads is not None and threads < 1:
        raise ConfigError(f"threads must be at least 1, not {threads}")
    if ray_address is not None:
        _import_ray()  # fails before any work, even when every file is done already
    todo: list[Path] = []
    for path in dict.fromkeys(items):
        if skip is not None and skip(path):
            yield path, None
        else:
            todo.append(path)
    if not todo:
        return
    skipped = len(dict.fromkeys(items)) - len(todo)
    with FilesBar.shown(len(todo) + skipped, skipped, enabled=progress) as bar:
        if ray_address is not None:
            files = _run_on_ray(todo, setup, work, workers, threads, ray_address)
        elif workers is not None and workers > 1:
            files = _run_on_pool(todo, setup, work, workers, threads)
        else:
            files = _run_here(todo, setup, work, threads)
        try:
            for path, outcome in files:
                bar.update(1)
                bar.clear()  # the caller may print a line about this file
                yield path, outcome
                bar.refresh()
        finally:
            files.close()


def _attempt(work: Callable[[S, Path], R], state: S, path: Path) -> R | LivesubError:
    try:
        return work(state, path)
    except LivesubError as e:
        return e


#: Read by the numeric libraries (OpenBLAS, MKL, OpenMP) as they load.
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _limit_native_threads(threads: int, *, process: bool) -> Any:
    """Holds the numeric libraries' own thread pools (numpy's OpenBLAS, OpenMP) to ``threads`` too.

    Not only against oversubscription: the same two-speaker recording came out with other speaker
    turns and words with one BLAS thread than with two (diarization's arithmetic), so where a file
    runs must not change how many threads its worker's libraries use. ``process``: the worker has
    the process to itself, and libraries it loads later are held too. Returns threadpoolctl's limits
    on the libraries loaded already (``restore_original_limits()``), or None without threadpoolctl.
    """
    if process:
        for name in _THREAD_VARIABLES:
            os.environ[name] = str(threads)
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # scikit-learn's dependency
    except ImportError:
        return None
    return threadpool_limits(limits=threads)


class _Worker(Generic[S, R]):
    """One worker: its state built once, then one file at a time. A pool process holds one; on Ray it
    is the actor. A failed ``setup`` is kept and raised by every call: from a pool's initializer it
    would only be printed, and a Ray actor dying in ``__init__`` loses its message. ``process``: the
    worker has its process to itself (its thread limits are for good)."""

    def __init__(
        self, setup: Callable[[int], S], work: Callable[[S, Path], R], threads: int, *, process: bool = True
    ) -> None:
        self._work = work
        self._failed: Exception | None = None
        if process:
            _limit_native_threads(threads, process=True)
        try:
            self._state = setup(threads)
        except Exception as e:
            self._failed = e

    def ready(self) -> int:
        """Returns once ``setup`` has run (raises its error): the worker's process id."""
        if self._failed is not None:
            raise self._failed
        return os.getpid()

    def run(self, path: Path) -> R | LivesubError:
        self.ready()
        return _attempt(self._work, self._state, path)


def _local_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):  # the cores this process may use (a container's share)
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _run_here(
    todo: list[Path], setup: Callable[[int], S], work: Callable[[S, Path], R], threads: int | None
) -> Generator[tuple[Path, R | LivesubError], None, None]:
    # As asked; by default (every core) this process's libraries are left as they are, as before.
    limits = _limit_native_threads(threads, process=False) if threads else None
    threads = threads or _local_cpus()
    log.info("%d files in this process, %d threads", len(todo), threads)
    try:
        worker = _Worker(setup, work, threads, process=False)
        worker.ready()
        for path in todo:
            yield path, worker.run(path)
    finally:
        if limits is not None:
            limits.restore_original_limits()


# -- a local process pool ------------------------------------------------------------------------

_pool_worker: _Worker[Any, Any] | None = None


def _start_pool_worker(setup: Callable[[int], Any], work: Callable[[Any, Path], Any], threads: int) -> None:
    # Ctrl-C reaches every process of the terminal's group; the driver stops the pool, and a
    # worker hearing it too would print a traceback. Blocked since this process started (see
    # _sigint_held); setting SIG_IGN drops one already pending.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    global _pool_worker
    _pool_worker = _Worker(setup, work, threads)


def _run_in_pool(path: Path) -> Any:
    assert _pool_worker is not None, "the pool's initializer sets the worker up"
    return _pool_worker.run(path)


@contextmanager
def _sigint_held() -> Iterator[None]:
    """Holds Ctrl-C back while worker processes start: they inherit the blocked signal, so they never
    hear it before their initializer ignores it; here it is delivered (not lost) once released."""
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _run_on_pool(
    todo: list[Path], setup: Callable[[int], S], work: Callable[[S, Path], R], workers: int, threads: int | None
) -> Generator[tuple[Path, R | LivesubError], None, None]:
    workers = min(workers, len(todo))
    threads = threads or max(1, _local_cpus() // workers)
    log.info("%d files on %d worker processes of %d threads", len(todo), workers, threads)
    executor = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_pool_worker,
        initargs=(setup, work, threads),
    )
    finished = False
    try:
        with _sigint_held():  # the processes start as the files are submitted
            futures: dict[Future[Any], Path] = {executor.submit(_run_in_pool, path): path for path in todo}
        for future in as_completed(futures):
            try:
                outcome = future.result()
            except BrokenProcessPool:
                raise LivesubError("a worker process died (out of memory?): stopped") from None
            yield futures[future], outcome
        finished = True
    finally:
        if not finished:
            _stop_pool(executor)
        executor.shutdown(wait=True, cancel_futures=True)


def _stop_pool(executor: ProcessPoolExecutor) -> None:
    """Ends the workers now: a file takes minutes, and Ctrl-C or an error should not wait for them."""
    # No public way before Python 3.14 (ProcessPoolExecutor.terminate_workers).
    processes = list((getattr(executor, "_processes", None) or {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join()


# -- Ray -----------------------------------------------------------------------------------------


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(_NO_RAY) from None
    return ray


def _check_reachable(address: str, named: str = "--ray") -> None:
    """Fails at once, and in one line, for an address nothing listens on (Ray itself retries for a minute)."""
    host, port = _host_port(address)
    if not host:
        raise ConfigError(f"{named} {address}: not a cluster address (auto, host:port or ray://host:port)")
    if reason := _unreachable(host, port):
        raise ConfigError(f"{named} {address}: cannot reach a Ray cluster there ({reason})")


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    return (host.strip("[]"), int(port)) if host and port.isdigit() else ("", 0)


def _unreachable(host: str, port: int) -> str | None:
    """Why nothing answers at host:port, or None when something does."""
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as e:
        return e.strerror or str(e)
    return None


def _auto_address() -> str | None:
    """Where ``"auto"`` goes: None lets Ray find the running cluster (``RAY_ADDRESS``, or the one
    ``ray start`` left on this machine) or start one; ``"local"`` starts one.

    Ray trusts the address ``ray start`` leaves in its temporary directory: when that cluster has
    died without ``ray stop`` (killed, out of memory), ``ray.init()`` retries it for good (measured:
    over 3 minutes, no end). A cluster there that no longer answers is passed over.
    """
    if os.environ.get("RAY_ADDRESS"):
        _check_reachable(os.environ["RAY_ADDRESS"], "RAY_ADDRESS")
        return None
    try:
        from ray._private.utils import read_ray_address  # how Ray finds that address (private: may move)

        latest = read_ray_address()
    except Exception:  # Ray has changed: leave the search to it
        return None
    if latest and _unreachable(*_host_port(latest)):
        log.info("the Ray cluster last started here (%s) is gone: starting a local one", latest)
        return "local"
    return None


@contextmanager
def _ray_session(address: str) -> Iterator[Any]:
    """Ray, joined to the cluster at ``address`` (``"auto"``: a running one, or a new local one), and
    left at the end: ``ray.shutdown`` disconnects, and stops the processes only if it started them. A
    connection the caller made already is theirs to end."""
    ray = _import_ray()
    if ray.is_initialized():
        yield ray
        return
    if address == "auto":
        target = _auto_address()
    else:
        _check_reachable(address)
        target = address
    # Usage statistics are sent to Ray's servers by default; nothing leaves this machine unasked.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    in_main = threading.current_thread() is threading.main_thread()
    sigterm = signal.getsignal(signal.SIGTERM) if in_main else None
    try:
        with warnings.catch_warnings():  # Ray warns too of a client connection timing out: said below
            warnings.simplefilter("ignore")
            ray.init(
                target,
                include_dashboard=False,  # no web server (minimal mode); none would be seen anyway
                log_to_driver=False,  # the workers' output stays in Ray's log files, off the user's terminal
                logging_level=logging.ERROR,  # Ray's own notices ("Started a local Ray instance", ...)
            )
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"--ray {address}: cannot join the Ray cluster ({reason})") from None
    try:
        yield ray
    finally:
        ray.shutdown()
        if sigterm is not None:  # ray.init replaced it
            signal.signal(signal.SIGTERM, sigterm)


def fit_cluster(node_cpus: Sequence[float], workers: int | None, threads: int | None, files: int) -> tuple[int, int]:
    """How many workers, of how many threads (CPUs) each, for ``files`` on machines with these CPUs.

    A worker's threads are on one machine, so a worker the cluster cannot hold would wait forever:
    the count is capped at what fits. Unless given, the threads are the most that let ``workers``
    (default: one per CPU), but no more workers than files, fit at once.
    """
    cpus = [int(c) for c in node_cpus if c >= 1]
    if not cpus:
        raise ConfigError("the Ray cluster has no CPUs to run on")

    def room(per_worker: int) -> int:
        return sum(c // per_worker for c in cpus)

    if threads is None:
        wanted = min(workers or sum(cpus), files)
        threads = max((t for t in range(1, max(cpus) + 1) if room(t) >= wanted), default=1)
    fits = room(threads)
    if not fits:
        raise ConfigError(f"no machine of the Ray cluster has {threads} CPUs for a worker (most: {max(cpus)})")
    if workers is not None and workers > fits:
        log.warning("the Ray cluster holds %d workers of %d CPUs, not %d: running %d", fits, threads, workers, fits)
    return min(workers or fits, fits, files), threads


def _ray_get(ray: Any, ref: Any) -> Any:
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        if isinstance(e.cause, LivesubError):
            raise e.cause from None  # setup's error, for the user: one line
        raise  # a bug: the message holds the worker's traceback
    except ray.exceptions.RayError as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise LivesubError(f"a Ray worker was lost (out of memory, or its machine is gone?): stopped ({reason})") from e


def _run_on_ray(
    todo: list[Path],
    setup: Callable[[int], S],
    work: Callable[[S, Path], R],
    workers: int | None,
    threads: int | None,
    address: str,
) -> Generator[tuple[Path, R | LivesubError], None, None]:
    with _ray_session(address) as ray:
        node_cpus = [node["Resources"].get("CPU", 0.0) for node in ray.nodes() if node.get("Alive")]
        workers, threads = fit_cluster(node_cpus, workers, threads, len(todo))
        log.info("%d files on %d Ray workers of %d CPUs", len(todo), workers, threads)
        # max_restarts=0: a worker lost is reported, not restarted behind the run's back.
        actor = ray.remote(num_cpus=threads, max_restarts=0)(_Worker)
        actors = [actor.remote(setup, work, threads) for _ in range(workers)]
        try:
            # Files go only to workers whose setup is done: one that cannot start (the cluster is
            # busy) holds no file back, and every file goes to the first worker free.
            starting: dict[Any, Any] = {a.ready.remote(): a for a in actors}
            running: dict[Any, tuple[Any, Path]] = {}
            queue = deque(todo)
            while queue or running:
                (ref,), _ = ray.wait([*starting, *running], num_returns=1)
                if ref in starting:
                    free = starting.pop(ref)
                    _ray_get(ray, ref)
                    done: tuple[Path, R | LivesubError] | None = None
                else:
                    free, path = running.pop(ref)
                    done = (path, _ray_get(ray, ref))
                if queue:  # before the caller hears of this file: the worker does not wait for it
                    path = queue.popleft()
                    running[free.run.remote(path)] = (free, path)
                if done is not None:
                    yield done
        finally:
            for a in actors:
                ray.kill(a)
