"""Many files at once (pipeline.parallel), for real: in this process, on a pool of processes, and on
a local Ray instance the test starts and stops. The toy worker below stands in for Whisper: its
setup leaves a mark per process (a second setup in one process would fail), its work writes one
output per file (a second write of one output would fail)."""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipeline import parallel
from pipeline.errors import AudioError, ConfigError, LivesubError, ModelError
from pipeline.parallel import fit_cluster, run_files

ROOT = Path(__file__).resolve().parent.parent

needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason="Ray is not installed: pip install 'livesub[cluster]'"
)


# -- the toy worker (module level: it travels to other processes by name) ------------------------


@dataclass(frozen=True)
class Toy:
    pid: int
    threads: int
    out: Path


@dataclass(frozen=True)
class Done:
    worker: int  # the process that did the file
    words: int
    output: Path


def start_toy(setups: Path, out: Path, threads: int, *, fail: bool = False) -> Toy:
    """Setup: one mark per process ("x": a second setup in the same process raises)."""
    (setups / str(os.getpid())).open("x").close()
    if fail:
        raise ModelError("cannot load the toy model: no such file")
    return Toy(os.getpid(), threads, out)


def transcribe_toy(toy: Toy, path: Path) -> Done:
    text = path.read_text(encoding="utf-8")
    if text.startswith("unreadable"):
        raise AudioError(f"{path.name}: not audio")
    if text.startswith("bug"):
        raise ValueError(f"{path.name}: a bug")
    if text.startswith("crash"):  # as the kernel's out-of-memory killer would end it
        os._exit(9)
    if text.startswith("slow"):
        (toy.out / f"{path.stem}.began").touch()
        time.sleep(60)
    output = toy.out / f"{path.stem}.txt"
    with output.open("x", encoding="utf-8") as f:  # "x": a file done twice raises
        f.write(text.upper())
    return Done(os.getpid(), len(text.split()), output)


# -- helpers ---------------------------------------------------------------------------------------


def recordings(directory: Path, texts: dict[str, str]) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in texts.items():
        path = directory / f"{name}.wav"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


SIX = {f"talk{i}": " ".join(["word"] * (i + 1)) for i in range(6)}


@dataclass
class Run:
    results: dict[Path, Any]  # in the order they came
    setups: set[int]  # the processes whose setup ran
    out: Path


def run(tmp: Path, name: str, paths: list[Path], *, fail_setup: bool = False, **options: Any) -> Run:
    setups, out = tmp / name / "setups", tmp / name / "out"
    setups.mkdir(parents=True)
    out.mkdir(parents=True)
    setup = functools.partial(start_toy, setups, out, fail=fail_setup)
    results = dict(run_files(paths, setup, transcribe_toy, progress=False, **options))
    return Run(results, {int(p.name) for p in setups.iterdir()}, out)


def summary(outcome: Run) -> dict[str, Any]:
    """What must not depend on where the files ran: each file's result and output."""
    seen: dict[str, Any] = {}
    for path, result in outcome.results.items():
        if isinstance(result, Done):
            seen[path.name] = (result.words, result.output.name, result.output.read_text(encoding="utf-8"))
        else:
            seen[path.name] = repr(result)
    return seen


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# -- in this process -------------------------------------------------------------------------------


def test_one_worker_runs_here_with_one_setup(tmp_path: Path) -> None:
    paths = recordings(tmp_path / "in", SIX)
    outcome = run(tmp_path, "here", paths)
    assert set(outcome.results) == set(paths)
    assert list(outcome.results) == paths  # here, in input order
    assert outcome.setups == {os.getpid()}
    assert all(isinstance(r, Done) and r.worker == os.getpid() for r in outcome.results.values())
    assert sorted(p.name for p in outcome.out.iterdir()) == sorted(f"{p.stem}.txt" for p in paths)


def test_a_failing_file_is_reported_and_the_others_go_on(tmp_path: Path) -> None:
    paths = recordings(tmp_path / "in", {"a": "one", "broken": "unreadable", "c": "three words here"})
    outcome = run(tmp_path, "here", paths)
    failed = outcome.results[paths[1]]
    assert isinstance(failed, AudioError) and str(failed) == "broken.wav: not audio"
    assert [r.words for r in outcome.results.values() if isinstance(r, Done)] == [1, 3]


def test_skipped_files_come_first_and_are_not_run(tmp_path: Path) -> None:
    paths = recordings(tmp_path / "in", SIX)
    done_already = {paths[1], paths[4]}
    outcome = run(tmp_path, "here", [*paths, paths[2]], skip=done_already.__contains__)  # one path twice
    assert list(outcome.results)[:2] == [paths[1], paths[4]]
    assert outcome.results[paths[1]] is None and outcome.results[paths[4]] is None
    assert sorted(p.name for p in outcome.out.iterdir()) == sorted(
        f"{p.stem}.txt" for p in paths if p not in done_already
    )


def test_nothing_to_do_starts_nothing(tmp_path: Path) -> None:
    paths = recordings(tmp_path / "in", SIX)
    outcome = run(tmp_path, "pool", paths, workers=2, skip=lambda _: True)  # skip runs here: a lambda is fine
    assert outcome.results == dict.fromkeys(paths)
    assert outcome.setups == set()


def test_a_bug_propagates(tmp_path: Path) -> None:
    paths = recordings(tmp_path / "in", {"a": "one", "b": "bug"})
    with pytest.raises(ValueError, match=r"b\.wav: a bug"):
        run(tmp_path, "here", paths)


def test_setup_error_ends_the_run(tmp_path: Path) -> None:
    paths = recordings(tmp_path / "in", SIX)
    with pytest.raises(ModelError, match="cannot load the toy model"):
        run(tmp_path, "here", paths, fail_setup=True)


# -- a pool of processes -----------------------------------------------------------------------------


def test_pool_does_every_file_once_with_one_setup_per_worker(tmp_path: Path) -> None:
    paths = recordings(tmp_path / "in", {**SIX, "broken": "unreadable"})
    done_already = {paths[0]}
    outcome = run(tmp_path, "pool", [*paths, paths[3]], workers=2, skip=done_already.__contains__)
    assert set(outcome.results) == set(paths) and outcome.results[paths[0]] is None
    assert isinstance(outcome.results[paths[-1]], AudioError)
    done = [r for r in outcome.results.values() if isinstance(r, Done)]
    assert len(done) == 5
    # Setup ran once in each worker process (a second one in a process raises), not once per file.
    assert 1 <= len(outcome.setups) <= 2 and os.getpid() not in outcome.setups
    assert {r.worker for r in done} <= outcome.setups
    assert sorted(p.name for p in outcome.out.iterdir()) == sorted(f"{p.stem}.txt" for p in paths[1:6])


def thread_budget(toy: Toy, path: Path) -> tuple[int, str | None, set[int]]:
    """The threads setup was given, and what the numeric libraries of the worker's process use."""
    from threadpoolctl import threadpool_info  # type: ignore[import-untyped]

    blas = {int(pool["num_threads"]) for pool in threadpool_info() if pool["internal_api"] == "openblas"}
    return toy.threads, os.environ.get("OMP_NUM_THREADS"), blas


def budgets(tmp_path: Path, **options: Any) -> set[tuple[int, str | None, frozenset[int]]]:
    paths = recordings(tmp_path / "in", {"a": "one", "b": "two"})
    setups, out = tmp_path / "setups", tmp_path / "out"
    setups.mkdir(exist_ok=True)
    out.mkdir(exist_ok=True)
    setup = functools.partial(start_toy, setups, out)
    found = set()
    for _, result in run_files(paths, setup, thread_budget, progress=False, **options):
        assert isinstance(result, tuple)
        threads, omp, blas = result
        found.add((threads, omp, frozenset(blas)))
    return found


def test_pool_divides_the_cores_among_the_workers(tmp_path: Path) -> None:
    """The workers' models, and their numeric libraries (numpy's BLAS), share the cores: a transcript
    must not depend on where it was made, and BLAS threads change diarization's arithmetic."""
    pytest.importorskip("threadpoolctl", reason="threadpoolctl comes with scikit-learn")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    share = max(1, cores // 2)
    assert budgets(tmp_path / "pool", workers=2) == {(share, str(share), frozenset({share}))}


def test_here_the_threads_asked_hold_during_the_run_only(tmp_path: Path) -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl", reason="threadpoolctl comes with scikit-learn")
    before = threadpoolctl.threadpool_info()
    found = budgets(tmp_path, threads=1)
    assert {(threads, blas) for threads, _, blas in found} == {(1, frozenset({1}))}
    assert threadpoolctl.threadpool_info() == before


def test_pool_bug_propagates_and_stops_the_workers(tmp_path: Path) -> None:
    paths = recordings(tmp_path / "in", {"a": "one", "b": "bug", "c": "slow"})
    with pytest.raises(ValueError, match=r"b\.wav: a bug"):
        run(tmp_path, "pool", paths, workers=2)
    setups = {int(p.name) for p in (tmp_path / "pool" / "setups").iterdir()}
    assert setups and not any(alive(pid) for pid in setups)


def test_pool_worker_dying_ends_the_run_in_one_line(tmp_path: Path) -> None:
    paths = recordings(tmp_path / "in", {"a": "crash", "b": "slow"})
    with pytest.raises(LivesubError, match=r"^a worker process died \(out of memory\?\): stopped$"):
        run(tmp_path, "pool", paths, workers=2)


def test_pool_setup_error_ends_the_run(tmp_path: Path) -> None:
    paths = recordings(tmp_path / "in", SIX)
    with pytest.raises(ModelError, match="cannot load the toy model"):
        run(tmp_path, "pool", paths, workers=2, fail_setup=True)


def test_leaving_early_stops_the_workers(tmp_path: Path) -> None:
    paths = recordings(tmp_path / "in", {"a": "one", "b": "slow", "c": "slow", "d": "slow"})
    setups, out = tmp_path / "setups", tmp_path / "out"
    setups.mkdir()
    out.mkdir()
    started = time.monotonic()
    with closing(
        run_files(paths, functools.partial(start_toy, setups, out), transcribe_toy, workers=2, progress=False)
    ) as files:
        first, result = next(files)
    assert first == paths[0] and isinstance(result, Done)
    assert time.monotonic() - started < 30  # the slow files (60 s) were not waited for
    pids = {int(p.name) for p in setups.iterdir()}
    assert pids and not any(alive(pid) for pid in pids)


DRIVER = """
import functools, sys
from pathlib import Path
from pipeline.parallel import run_files
from tests.test_parallel import start_toy, transcribe_toy
tmp = Path(sys.argv[1])
paths = sorted((tmp / "in").iterdir())
try:
    for path, result in run_files(paths, functools.partial(start_toy, tmp / "setups", tmp / "out"), transcribe_toy,
                                  workers=2):
        print(path.name, flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(130)
"""


def test_ctrl_c_stops_the_pool_without_a_traceback(tmp_path: Path) -> None:
    """Ctrl-C on a terminal reaches the whole process group: the driver and its workers."""
    recordings(tmp_path / "in", {"a": "slow", "b": "slow", "c": "slow"})
    (tmp_path / "setups").mkdir()
    (tmp_path / "out").mkdir()
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # not ignored as in a background job
    )
    try:
        deadline = time.monotonic() + 60
        while len(list((tmp_path / "out").glob("*.began"))) < 2:  # both workers are in a file
            assert driver.poll() is None, driver.communicate()
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.05)
        os.killpg(driver.pid, signal.SIGINT)
        stdout, stderr = driver.communicate(timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 130, stderr
    assert stdout == "interrupted\n"
    assert "Traceback" not in stderr, stderr
    workers = {int(p.name) for p in (tmp_path / "setups").iterdir()}
    assert len(workers) == 2 and not any(alive(pid) for pid in workers)


# -- arguments -------------------------------------------------------------------------------------


NO_SETUP = functools.partial(start_toy, Path("/nonexistent"), Path("/nonexistent"))  # never reached


def test_bad_counts_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="workers must be at least 1"):
        next(run_files([tmp_path], NO_SETUP, transcribe_toy, workers=0))
    with pytest.raises(ConfigError, match="threads must be at least 1"):
        next(run_files([tmp_path], NO_SETUP, transcribe_toy, threads=0))


def test_ray_missing_is_a_one_line_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets without Ray installed
    with pytest.raises(ConfigError, match=r"^--ray needs Ray: pip install 'livesub\[cluster\]'$"):
        next(run_files([tmp_path], NO_SETUP, transcribe_toy, ray_address="auto"))


@needs_ray
@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("127.0.0.1:1", r"^--ray 127.0.0.1:1: cannot reach a Ray cluster there \(Connection refused\)$"),
        ("cluster", r"^--ray cluster: not a cluster address \(auto, host:port or ray://host:port\)$"),
    ],
)
def test_an_unreachable_cluster_is_a_one_line_config_error(tmp_path: Path, address: str, message: str) -> None:
    paths = recordings(tmp_path / "in", {"a": "one"})
    with pytest.raises(ConfigError, match=message):
        next(run_files(paths, NO_SETUP, transcribe_toy, ray_address=address))


@pytest.mark.parametrize(
    ("cpus", "workers", "threads", "files", "fit"),
    [
        ([2], None, None, 6, (2, 1)),  # one worker per core
        ([2], 1, None, 6, (1, 2)),  # one worker gets both cores
        ([2], None, None, 1, (1, 2)),  # one file: one worker, every core
        ([2], 3, None, 6, (2, 1)),  # no more workers than fit
        ([16, 16, 8], 4, None, 40, (4, 8)),  # 4 workers of 8 CPUs fit (2 + 2 + 1), of 10 they would not
        ([16, 16, 8], None, None, 100, (40, 1)),
        ([4, 4], None, 3, 10, (2, 3)),  # threads given: one worker per machine
        ([4, 0.5], None, None, 2, (2, 2)),  # a machine without a whole CPU holds none
    ],
)
def test_fit_cluster(
    cpus: list[float], workers: int | None, threads: int | None, files: int, fit: tuple[int, int]
) -> None:
    assert fit_cluster(cpus, workers, threads, files) == fit


def test_fit_cluster_too_big_a_worker() -> None:
    with pytest.raises(ConfigError, match="no machine of the Ray cluster has 8 CPUs"):
        fit_cluster([4, 4], None, 8, 3)
    with pytest.raises(ConfigError, match="no CPUs"):
        fit_cluster([0.0], None, None, 3)


# -- Ray ---------------------------------------------------------------------------------------------


def ray_running() -> bool:
    import ray

    return bool(ray.is_initialized())


@contextmanager
def own_ray_directory() -> Iterator[Path]:
    """Ray's temporary directory for this test alone (RAY_TMPDIR), so that no cluster of this machine
    is joined; short, as Ray's sockets live in it."""
    directory = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp" if Path("/tmp").is_dir() else None))
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("RAY_TMPDIR", str(directory))
            env.delenv("RAY_ADDRESS", raising=False)
            yield directory / "ray"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@needs_ray
def test_ray_starts_a_local_instance_and_gives_the_same_results(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """ "auto" with no cluster running starts a local Ray instance, and stops it at the end; the
    address of a cluster `ray start` left, which died since, is passed over (Ray would retry it for good)."""
    paths = recordings(tmp_path / "in", {**SIX, "broken": "unreadable"})
    skip = {paths[0]}.__contains__
    here = run(tmp_path, "here", paths, skip=skip)
    pool = run(tmp_path, "pool", paths, skip=skip, workers=2)
    with own_ray_directory() as ray_directory, caplog.at_level(logging.INFO, logger="pipeline.parallel"):
        ray_directory.mkdir()
        (ray_directory / "ray_current_cluster").write_text("127.0.0.1:1\n", encoding="utf-8")
        started = time.monotonic()
        on_ray = run(tmp_path, "ray", paths, skip=skip, ray_address="auto", workers=2)
        took = time.monotonic() - started
    assert "(127.0.0.1:1) is gone: starting a local one" in caplog.text
    assert not ray_running()
    assert summary(on_ray) == summary(pool) == summary(here)
    assert on_ray.results[paths[0]] is None and isinstance(on_ray.results[paths[-1]], AudioError)
    done = [r for r in on_ray.results.values() if isinstance(r, Done)]
    assert 1 <= len(on_ray.setups) <= 2 and os.getpid() not in on_ray.setups
    assert {r.worker for r in done} <= on_ray.setups
    print(f"Ray: started, 7 files, stopped in {took:.1f} s")


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[None]:
    """One local Ray instance for the tests below, started and stopped as run_files does; run_files
    leaves a connection it did not make alone."""
    with own_ray_directory(), parallel._ray_session("auto"):
        yield
    assert not ray_running()


@needs_ray
def test_ray_reports_a_failing_file_and_raises_a_bug(tmp_path: Path, ray_instance: None) -> None:
    paths = recordings(tmp_path / "in", {"a": "one", "broken": "unreadable"})
    outcome = run(tmp_path, "ray", paths, ray_address="auto")
    assert ray_running()  # the fixture's: not stopped by run_files
    failed = outcome.results[paths[1]]
    assert isinstance(failed, AudioError) and str(failed) == "broken.wav: not audio"
    paths = recordings(tmp_path / "in2", {"a": "one", "b": "bug"})
    with pytest.raises(ValueError, match=r"b\.wav: a bug"):
        run(tmp_path, "ray2", paths, ray_address="auto")


@needs_ray
def test_ray_setup_error_is_one_line(tmp_path: Path, ray_instance: None) -> None:
    paths = recordings(tmp_path / "in", SIX)
    with pytest.raises(ModelError) as caught:
        run(tmp_path, "ray", paths, ray_address="auto", fail_setup=True)
    assert str(caught.value) == "cannot load the toy model: no such file"
    assert isinstance(caught.value, LivesubError)


@needs_ray
def test_ray_workers_keep_to_their_cpus(tmp_path: Path, ray_instance: None) -> None:
    pytest.importorskip("threadpoolctl", reason="threadpoolctl comes with scikit-learn")
    found = budgets(tmp_path, ray_address="auto")
    assert found and all(omp == str(threads) and blas == {threads} for threads, omp, blas in found)


@needs_ray
def test_ray_worker_dying_ends_the_run_in_one_line(tmp_path: Path, ray_instance: None) -> None:
    paths = recordings(tmp_path / "in", {"a": "crash", "b": "one"})
    with pytest.raises(LivesubError, match=r"^a Ray worker was lost .*: stopped \(") as caught:
        run(tmp_path, "ray", paths, ray_address="auto")
    assert "\n" not in str(caught.value)
