"""Two worker processes on one study, on a real PostgreSQL server and on the journal file (no mock storage).

* they finish exactly N trials, with unique numbers, and both work (slow: TRAINWELL_FULL=1; the next
  test checks the same counts);
* one of them SIGKILLed mid-trial: its trial ends FAIL (found by the other's
  heartbeat check) and is retried with the same parameters; the study still
  ends with exactly N counted trials, none running, none twice.
"""

import os
import signal
import threading
import time

import pytest

optuna = pytest.importorskip("optuna", reason="the tune extra (optuna) is not installed: pip install -e '.[tune]'")

from trainwell.selection.study import Storage, counted, storage_spec  # noqa: E402
from trainwell.selection.tune import tune  # noqa: E402

SPACE = {"optim.lr": {"log_uniform": [0.02, 0.1]}, "model.width": {"int": [8, 16]}}  # Adam: healthy trials


@pytest.fixture(params=["journal", "postgresql"])
def storage(request, tmp_path):
    """The ``storage`` argument of tune: None (the journal in the study directory) or the server's URL."""
    if request.param == "journal":
        return None
    return request.getfixturevalue("postgres_url")


def _study(storage, root, name):
    spec = storage_spec(storage, root, heartbeat=1)
    return optuna.load_study(study_name=name, storage=Storage(spec).optuna)


@pytest.mark.slow  # the killed-worker test below checks the same counts, and runs by default
def test_two_workers_finish_exactly_n_trials(tiny_base, tmp_path, storage):
    name = f"two-{os.getpid()}-{time.monotonic_ns()}"
    s = tune(tiny_base, SPACE, trials=4, jobs=2, storage=storage, study=name, out=tmp_path / "s",
             sampler="random", heartbeat=1)
    trials = _study(storage, tmp_path / "s", name).get_trials()
    assert sorted(t.number for t in trials) == list(range(4))
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in trials)
    assert s["counts"]["trials"] == 4 and s["counts"]["retried"] == 0 and not any("exit code" in n for n in s["notes"])
    workers = {t.system_attrs["trainwell_worker"] for t in trials}
    assert len(workers) == 2  # two processes shared the work
    assert {t.user_attrs["dir"] for t in trials} == {f"trial-{n}" for n in range(4)}
    assert all((tmp_path / "s" / f"trial-{n}" / "metrics.json").exists() for n in range(4))


def test_a_worker_killed_mid_trial_loses_nothing(tiny_base, tmp_path, storage):
    name = f"kill-{os.getpid()}-{time.monotonic_ns()}"
    base = {**tiny_base, "train": {"epochs": 25, "progress": False}}  # trials of a second or two, to be killed in
    root = tmp_path / "s"
    result, killed = {}, {}

    def run():
        try:
            result["summary"] = tune(base, SPACE, trials=4, jobs=2, storage=storage, study=name, out=root,
                                     sampler="random", pruner="none", heartbeat=1)
        except BaseException as err:  # noqa: BLE001 - shown by the assertion below
            result["error"] = repr(err)

    thread = threading.Thread(target=run)
    thread.start()
    deadline, opened = time.monotonic() + 240, None
    while not killed and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
        if storage is None and not (root / "journal.log").exists():
            continue
        try:
            opened = opened or Storage(storage_spec(storage, root, heartbeat=1)).optuna
            running = optuna.load_study(study_name=name, storage=opened).get_trials(
                states=(optuna.trial.TrialState.RUNNING,))
        except KeyError:  # the study is not created yet
            continue
        for t in running:  # mid-trial: training has written an epoch
            history = root / f"trial-{t.number}" / "history.jsonl"
            if history.exists() and history.read_text().count("\n") >= 1:
                pid = int(t.system_attrs["trainwell_worker"].rsplit(":", 1)[1])
                os.kill(pid, signal.SIGKILL)
                killed.update(number=t.number, params=t.params, pid=pid)
                break
    thread.join(timeout=300)
    assert killed, f"no trial was caught running ({result.get('error', 'tune ended first')})"
    assert not thread.is_alive() and "summary" in result
    trials = _study(storage, root, name).get_trials()
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers)) == 5  # 4 and the retry of the killed one
    lost = trials[killed["number"]]
    assert lost.state.name == "FAIL"
    retry = [t for t in trials if t.system_attrs.get("retry_history") == [killed["number"]]]
    finished = ("COMPLETE", "PRUNED")  # the doctor may prune a trial; none is left running or failed
    assert len(retry) == 1 and retry[0].params == killed["params"] and retry[0].state.name in finished
    kept = counted(trials)
    assert len(kept) == 4 and all(t.state.name in finished for t in kept)
    assert len({t.system_attrs["trainwell_worker"] for t in trials}) == 2  # both workers took trials
    assert all((root / t.user_attrs["dir"] / "metrics.json").exists() for t in kept)
    s = result["summary"]
    assert s["counts"]["trials"] == 4 and s["counts"]["retried"] == 1
    assert any(f"pid {killed['pid']}) ended with exit code -9" in n for n in s["notes"])
