"""The run directory: where a run writes, and how a finished or interrupted one is read back.

A run directory holds:

* ``config.yaml``   - the full resolved config (every default filled in);
* ``history.jsonl`` - one line per epoch;
* ``metrics.json``  - final train/val/test metrics, per-class recall, best epoch;
* ``diagnosis.json`` - the doctor's audit, findings, notes and repairs;
* ``stats.jsonl``   - the doctor's per-layer measurements, one line per sample
  (:mod:`trainwell.doctor.record`);
* ``model.safetensors`` - the parameters (:mod:`trainwell.io`);
* ``checkpoints/``  - checkpoints, for ``--resume``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from trainwell.config import Config, load_config
from trainwell.errors import TrainwellError
from trainwell.io import MODEL_FILE, atomic_write_text
from trainwell.loop.distributed import is_main

__all__ = ["clear_attempt", "new_run_dir", "previous_audit", "previous_repairs", "read_run", "write_json"]


def new_run_dir(out: str | Path | None, name: str) -> Path:
    """Create the directory of a new run: ``out`` (new or empty), or ``runs/<timestamp>-<name>``.

    Raises:
        TrainwellError: ``out`` holds files already, cannot be created, or refuses files (read-only).
    """
    if out is None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        base = Path("runs") / f"{stamp}-{name}"
        path, i = base, 2
        while path.exists():
            path, i = base.with_name(f"{base.name}-{i}"), i + 1
    else:
        path = Path(out)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise TrainwellError(f"--out {path} already exists and is not an empty directory; "
                                 "choose a new directory (nothing was written)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise TrainwellError(f"cannot create run directory {path}: {err.strerror}") from None
    try:  # an existing directory may still refuse files (a read-only mount): found before any is written
        fd, probe = tempfile.mkstemp(dir=path, prefix=".trainwell-probe-")
    except OSError as err:
        raise TrainwellError(f"cannot write to {path}: {err.strerror} (nothing was written)") from None
    os.close(fd)
    os.unlink(probe)
    return path


def read_run(run_dir: str | Path) -> tuple[Path, Config]:
    """The directory and config of a run.

    Raises:
        TrainwellError: no such directory, or not a run directory.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise TrainwellError(f"run directory not found: {run_dir}")
    if not (run_dir / "config.yaml").is_file():
        raise TrainwellError(f"{run_dir} is not a trainwell run directory (no config.yaml)")
    return run_dir, load_config(run_dir / "config.yaml")


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities as None: JSON has no NaN, and most parsers refuse a bare one."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def write_json(path: Path, value: Any) -> None:
    """Write ``value`` as indented JSON, atomically (non-finite numbers as null); in a data-parallel run,
    rank 0 alone writes the run's files."""
    if not is_main():
        return
    atomic_write_text(path, json.dumps(_finite(value), indent=2, default=str, allow_nan=False))


def clear_attempt(run_dir: Path) -> None:
    """Before a repaired attempt: drop the failed attempt's files (its checkpoints belong to another config).
    Rank 0 alone, in a data-parallel run."""
    if not is_main():
        return
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    for name in ("history.jsonl", "metrics.json", MODEL_FILE, "diagnosis.json", "stats.jsonl"):
        (run_dir / name).unlink(missing_ok=True)


def _diagnosis(run_dir: Path) -> dict[str, Any]:
    try:
        saved = json.loads((run_dir / "diagnosis.json").read_text())
    except (OSError, ValueError):
        return {}
    return saved if isinstance(saved, dict) else {}


def previous_audit(run_dir: Path) -> list[dict[str, Any]]:
    """A resumed run keeps the audit of its start (written to diagnosis.json then)."""
    return _diagnosis(run_dir).get("audit", [])


def previous_repairs(run_dir: Path) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """A resumed run keeps the repairs made before it was interrupted, and the config the user gave."""
    saved = _diagnosis(run_dir)
    return list(saved.get("repairs", [])), saved.get("config_given")
