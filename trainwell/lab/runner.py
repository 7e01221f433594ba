"""Running experiments: one in this process, or many in worker processes, each writing ``DIR/NAME/``.

``DIR/NAME/`` holds ``result.json`` (the claim, the criterion, the verdict and
the measurements it was computed from, the config and seeds), PNG plots drawn
from ``result.json`` alone, and a ``README.md``. ``DIR/lab.json`` marks a lab
run, so that a later run into the same ``--out`` goes to a new subdirectory.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import multiprocessing.connection
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from trainwell.errors import TrainwellError
from trainwell.io import atomic_write_text
from trainwell.lab.base import VERDICTS, Experiment, jsonable
from trainwell.lab.experiments import EXPERIMENTS
from trainwell.lab.result import Result, draw

__all__ = ["LAB_FILE", "execute", "lab_dir", "run_many", "write_result"]

LAB_FILE = "lab.json"


@contextmanager
def _isolated(threads: int | None) -> Iterator[None]:
    """One torch thread (workers share the cores) and the global RNG restored afterwards."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        torch.set_num_threads(previous)


def execute(experiment: Experiment, *, quick: bool = False, seeds: int | None = None,
            threads: int | None = 1) -> Result:
    """Run ``experiment`` here and judge it; an exception becomes a result with verdict ``error``."""
    cfg = experiment.settings(quick)
    n_seeds = seeds if seeds is not None else getattr(cfg, "seeds", 1)
    seed_list = list(range(n_seeds))
    start = time.perf_counter()
    measurements: dict[str, Any] = {}
    error = None
    try:
        with _isolated(threads):
            measurements = jsonable(experiment.run(cfg, seed_list))
        missing = [k for k in experiment.keys if k not in measurements]
        if missing:
            raise RuntimeError(f"the run did not measure {', '.join(missing)}")
        verdict, reason = experiment.verdict(measurements, cfg)
        if verdict not in VERDICTS[:3]:
            raise RuntimeError(f"verdict {verdict!r} is not one of {', '.join(VERDICTS[:3])}")
    except Exception as exc:  # a crashing experiment is reported, the others still run
        verdict, reason = "error", f"{type(exc).__name__}: {exc}"
        error = traceback.format_exc()
    return Result(experiment.name, experiment.claim, experiment.source, experiment.criterion, verdict, reason,
                  measurements, jsonable(dataclasses.asdict(cfg)) | {"seeds": n_seeds}, seed_list,
                  round(time.perf_counter() - start, 3), quick, experiment.setup, error)


def _readme(result: Result, plots: list[str], summary: str) -> str:
    lines = [f"# {result.name}", "", f"**Claim.** {result.claim}", "", f"**Source.** {result.source}", ""]
    if result.setup:
        lines += [f"**Set-up.** {result.setup}", ""]
    lines += [f"**Criterion** (written before running). {result.criterion}", "",
              f"**Verdict: {result.verdict}.** {result.reason}", ""]
    if summary:
        lines += [f"**Numbers.** {summary}", ""]
    lines += [f"Seeds: {result.seeds}; quick: {str(result.quick).lower()}; {result.seconds:.1f} s. "
              "Every number is in `result.json`; the config there reruns it "
              f"(`trainwell lab run {result.name}{' --quick' if result.quick else ''}"
              f"{f' --seeds {len(result.seeds)}' if result.seeds else ''}`).", ""]
    lines += [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def write_result(result: Result, directory: Path, summary: Callable[[dict], str] | None = None) -> Result:
    """Write ``result.json``, then the plots (read back from it) and the README, into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_text(directory / "result.json", json.dumps(result.to_dict(), indent=1, allow_nan=False))
    result = Result.read(directory)
    plots: list[str] = []
    text = ""
    try:
        plots = [p.name for p in draw(result, directory)]
        text = summary(result.measurements) if summary and result.verdict != "error" else ""
    except Exception as exc:  # a plot that fails is an error of the experiment, reported like a crash
        result.verdict, result.reason, result.error = "error", f"plot failed: {type(exc).__name__}: {exc}", \
            traceback.format_exc()
        atomic_write_text(directory / "result.json", json.dumps(result.to_dict(), indent=1, allow_nan=False))
    atomic_write_text(directory / "README.md", _readme(result, plots, text))
    return result


def lab_dir(out: str | Path | None) -> Path:
    """The directory of a new lab run: ``out`` itself when new or empty, else a new ``run-N`` inside it."""
    root = Path(out) if out is not None else Path("lab-results")
    if root.exists() and not root.is_dir():
        raise TrainwellError(f"--out {root} is a file, not a directory")
    if not root.exists() or not any(root.iterdir()):
        return root
    n = 2
    while (root / f"run-{n}").exists():
        n += 1
    return root / f"run-{n}"


def _worker(experiment: Experiment, quick: bool, seeds: int | None, directory: str) -> None:
    write_result(execute(experiment, quick=quick, seeds=seeds), Path(directory), experiment.summary)


def _crashed(name: str, quick: bool, directory: Path, code: int | None) -> Result:
    e = EXPERIMENTS[name]
    why = "was stopped" if code is None else f"exited with code {code}"
    result = Result(name, e.claim, e.source, e.criterion, "error", f"the experiment's process {why} "
                    "before writing its result", {}, {}, [], 0.0, quick, e.setup, why)
    return write_result(result, directory)


def _context() -> multiprocessing.context.BaseContext:
    # not fork: a child forked from a process whose torch ran several OpenMP threads hangs in its first parallel
    # region (the lab's own process, or a test suite's, has trained by then); forkserver forks each worker from
    # a clean server that has imported the experiments once, so a worker still starts in milliseconds
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    # torch imports its compiler stack at the first optimizer (about 3 s a process): the server does it once
    ctx.set_forkserver_preload(["trainwell.lab.experiments", "torch._dynamo"])
    return ctx


def run_many(names: Sequence[str], root: Path, *, quick: bool = False, seeds: int | None = None, jobs: int = 1,
             on_done: Callable[[Result], None] | None = None) -> list[Result]:
    """Run each experiment in its own process, ``jobs`` at a time, into ``root/NAME``.

    A process that raises, or dies, gives a result with verdict ``error``; the others still run.
    ``on_done`` is called with each result as it finishes. Returns the results in ``names``' order.
    """
    root.mkdir(parents=True, exist_ok=True)
    started = time.time()
    atomic_write_text(root / LAB_FILE, json.dumps({"experiments": list(names), "quick": quick, "seeds": seeds,
                                                   "jobs": jobs, "started": started}, indent=1))
    ctx = _context()
    waiting = list(names)
    running: dict[str, Any] = {}
    done: dict[str, Result] = {}
    while waiting or running:
        while waiting and len(running) < max(jobs, 1):
            name = waiting.pop(0)
            proc = ctx.Process(target=_worker, args=(EXPERIMENTS[name], quick, seeds, str(root / name)),
                               name=f"lab-{name}")
            proc.start()
            running[name] = proc
        multiprocessing.connection.wait([p.sentinel for p in running.values()], timeout=1.0)
        for name, proc in list(running.items()):
            if proc.exitcode is None:
                continue
            del running[name]
            path = root / name
            if proc.exitcode == 0 and (path / "result.json").exists():
                done[name] = Result.read(path)
            else:
                done[name] = _crashed(name, quick, path, proc.exitcode)
            if on_done is not None:
                on_done(done[name])
    results = [done[n] for n in names]
    summary = {"experiments": list(names), "quick": quick, "seeds": seeds, "jobs": jobs, "started": started,
               "seconds": round(time.time() - started, 2), "verdicts": {r.name: r.verdict for r in results}}
    atomic_write_text(root / LAB_FILE, json.dumps(summary, indent=1))
    return results

