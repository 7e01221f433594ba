"""Optuna studies on shared storage, for ``trainwell tune``: many processes and machines, one study.

The storage is the only shared service:

* a journal file (Optuna's ``JournalStorage`` on a ``JournalFileBackend``):
  the default, ``journal.log`` in the study directory; one host, or several
  on NFS;
* an RDB URL (``postgresql://user@host/db``; ``sqlite:///file.db`` on one
  host): Optuna's ``RDBStorage``, for many machines.

Three things make a study with many workers end with exactly the trials it
was asked for, whatever happens to a worker:

* **Claims.** A worker takes its next trial (``study.ask()``) while it holds
  the study's claim lock (a PostgreSQL advisory lock, or Optuna's NFS-safe
  symlink lock next to the journal), after counting the trials so far, so
  two workers never both take the last one.
* **Heartbeats.** A worker's running trial beats every ``heartbeat``
  seconds: Optuna's own heartbeat on an RDB, and for the journal (whose
  storage has none in Optuna 4-5) a ``trainwell_heartbeat`` time in the
  trial's system attributes. A running trial that has not beaten for
  ``3 * heartbeat`` seconds belonged to a worker that died (SIGKILL, a lost
  machine): the next worker to claim fails it.
* **Retries.** A trial failed that way is queued again with its parameters
  (Optuna's ``RetryHeartbeatStaleTrialCallback``, ``retry_history`` in its
  system attributes), and counts once: the failed original is not counted
  when it has a retry.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import inspect
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainwell.errors import TrainwellError

try:
    import optuna
    from optuna.trial import TrialState
except ImportError:  # the `tune` extra
    optuna = None

__all__ = ["BEAT_ATTR", "MAX_RETRY", "Storage", "StorageSpec", "counted", "require_optuna", "storage_spec"]

BEAT_ATTR = "trainwell_heartbeat"  # journal storage: the time of a running trial's last heartbeat
MAX_RETRY = 2  # a trial whose worker died is run again at most this many times


def require_optuna() -> None:
    """Raise a one-line error when Optuna is not installed."""
    if optuna is None:
        raise TrainwellError("trainwell tune needs Optuna: pip install 'trainwell[tune]'")


@dataclass(frozen=True)
class StorageSpec:
    """Where a study lives, picklable for worker processes: ``kind`` is ``journal`` or ``rdb``."""

    kind: str
    url: str  # the journal file's path, or the RDB URL
    heartbeat: int

    @property
    def grace(self) -> int:
        """Seconds without a heartbeat after which a running trial's worker counts as dead."""
        return 3 * self.heartbeat

    def describe(self) -> str:
        """The storage for messages, without a password."""
        if self.kind == "journal":
            return f"journal file {self.url}"
        head, _, tail = self.url.rpartition("@")
        return (head.split("://")[0] + "://***@" + tail) if head else self.url


def storage_spec(storage: str | Path | None, study_dir: Path, heartbeat: int = 30) -> StorageSpec:
    """Parse ``--storage``: None (a journal in the study directory), a journal file path, or an RDB URL.

    Raises:
        TrainwellError: an URL scheme other than postgresql or sqlite, or a heartbeat below 1 s.
    """
    if heartbeat < 1:
        raise TrainwellError(f"the heartbeat must be >= 1 second, got {heartbeat}")
    if storage is None:
        return StorageSpec("journal", str(study_dir / "journal.log"), heartbeat)
    text = str(storage)
    if "://" not in text:
        return StorageSpec("journal", str(Path(text).resolve()), heartbeat)
    scheme = text.split("://", 1)[0].split("+", 1)[0]
    if scheme not in ("postgresql", "sqlite"):
        raise TrainwellError(f"--storage takes postgresql://user@host/db, sqlite:///file.db or a journal file path, "
                             f"got a {scheme}:// URL")
    return StorageSpec("rdb", text, heartbeat)


def _with_driver(url: str) -> str:
    """``postgresql://`` with the psycopg2 driver when psycopg (3) is not installed: SQLAlchemy >= 2.1 takes
    psycopg for a URL that names no driver, and the ``tune`` extra installs psycopg2-binary."""
    if url.startswith("postgresql://") and importlib.util.find_spec("psycopg") is None \
            and importlib.util.find_spec("psycopg2") is not None:
        return "postgresql+psycopg2://" + url.removeprefix("postgresql://")
    return url


def _retry_callback() -> Any:
    retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) or optuna.storages.RetryFailedTrialCallback
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # experimental in Optuna: a warning on every worker is noise
        return retry(max_retry=MAX_RETRY)


class Storage:
    """An open storage of a :class:`StorageSpec`, in one process.

    Attributes:
        optuna: the Optuna storage (pass it to ``optuna.create_study`` / ``load_study``).
    """

    def __init__(self, spec: StorageSpec) -> None:
        require_optuna()
        self.spec = spec
        if spec.kind == "journal":
            path = Path(spec.url)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                journal = optuna.storages.journal
                self.optuna = journal.JournalStorage(journal.JournalFileBackend(str(path)))
            except OSError as err:
                raise TrainwellError(f"cannot open the journal file {path}: {err.strerror or err}") from None
            target = Path(str(path) + ".claim")  # the lock links to it: a lock left by a dead worker is broken
            target.touch()                       # after the lock's grace period only if the target exists
            self._claim_lock = optuna.storages.journal.JournalFileSymlinkLock(str(target))
            self._retry_callback = _retry_callback()
            return
        stale = "heartbeat_stale_trial_callback" if "heartbeat_stale_trial_callback" in \
            inspect.signature(optuna.storages.RDBStorage).parameters else "failed_trial_callback"
        for attempt in range(3):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    self.optuna = optuna.storages.RDBStorage(
                        _with_driver(spec.url), engine_kwargs={"pool_pre_ping": True},
                        heartbeat_interval=spec.heartbeat, grace_period=spec.grace, **{stale: _retry_callback()})
                break
            except Exception as err:  # sqlalchemy's: a wrong host, password or database, a missing driver, or
                if attempt < 2 and ("already exists" in str(err) or "UniqueViolation" in str(err)):
                    time.sleep(0.5)  # another process creating Optuna's tables in a new database at the same time
                    continue
                first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                raise TrainwellError(f"cannot open the storage {spec.describe()}: {first}") from None
        self._retry_callback = _retry_callback()

    @contextlib.contextmanager
    def claim(self, study_name: str) -> Iterator[None]:
        """Hold the study's claim lock (see the module's docstring)."""
        if self.spec.kind == "journal":
            while not self._claim_lock.acquire():  # it retries itself and breaks a lock older than its grace
                time.sleep(0.01)
            try:
                yield
            finally:
                self._claim_lock.release()
        elif self.optuna.engine.dialect.name == "postgresql":
            key = int.from_bytes(hashlib.sha256(study_name.encode()).digest()[:8], "big", signed=True)
            with self.optuna.engine.connect() as conn:  # a session lock: the server drops it if the worker dies
                conn.exec_driver_sql("SELECT pg_advisory_lock(%s)", (key,))
                try:
                    yield
                finally:
                    conn.exec_driver_sql("SELECT pg_advisory_unlock(%s)", (key,))
        else:  # sqlite: one host, a file lock beside the database
            path = self.optuna.engine.url.database or ""
            with open(f"{path}.claim", "a") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(f, fcntl.LOCK_UN)

    def trial_id(self, study: Any, number: int) -> int:
        return self.optuna.get_trial_id_from_study_id_trial_number(
            self.optuna.get_study_id_from_name(study.study_name), number)

    def requeue(self, study: Any, trial_id: int) -> None:
        """Queue a failed trial again with its parameters (a worker interrupted by the user)."""
        self._retry_callback(study, self.optuna.get_trial(trial_id))

    def beat(self, trial_id: int) -> None:
        """Record that a running trial is alive."""
        if self.spec.kind == "journal":
            self.optuna.set_trial_system_attr(trial_id, BEAT_ATTR, time.time())
        else:
            self.optuna.record_heartbeat(trial_id)

    @contextlib.contextmanager
    def heartbeat(self, trial_id: int) -> Iterator[None]:
        """Beat for ``trial_id`` in a thread while the block runs."""
        stop = threading.Event()

        def beat() -> None:
            while True:
                with contextlib.suppress(Exception):  # a finished trial (failed by another worker), a lost link
                    self.beat(trial_id)
                if stop.wait(self.spec.heartbeat):
                    return

        thread = threading.Thread(target=beat, name="trainwell-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def fail_stale(self, study: Any) -> list[int]:
        """Fail the running trials whose worker stopped beating and queue their retries; their numbers."""
        if self.spec.kind == "rdb":
            before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                optuna.storages.fail_stale_trials(study)
            still = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
            return sorted(n for n in before - still
                          if study.get_trials(deepcopy=False)[n].state == TrialState.FAIL)
        now, failed = time.time(), []
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            last = t.system_attrs.get(BEAT_ATTR)
            if last is None and t.datetime_start is not None:  # not beaten yet: since it started
                last = t.datetime_start.timestamp()
            if last is None or now - last <= self.spec.grace:
                continue
            trial_id = self.trial_id(study, t.number)
            try:
                if not self.optuna.set_trial_state_values(trial_id, TrialState.FAIL):
                    continue
            except optuna.exceptions.UpdateFinishedTrialError:  # it finished, or another worker failed it
                continue
            failed.append(t.number)
            self._retry_callback(study, self.optuna.get_trial(trial_id))
        return failed


def counted(trials: list[Any]) -> list[Any]:
    """The trials that count towards a study's budget: all but the failed ones that were retried."""
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    return [t for t in trials if t.number not in retried]
