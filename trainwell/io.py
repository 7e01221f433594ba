"""Files: atomic writes, safetensors reads, and the saved-model format.

The model file (``model.safetensors``) holds a model's tensors and, in its
header, the format tag and what the model needs to know about the data
(:class:`~trainwell.data.DataSpec` as JSON); its structure is the run's
``config.yaml``. Reading a model file never unpickles anything.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainwell.errors import TrainwellError

__all__ = ["MODEL_FILE", "MODEL_FORMAT", "UnreadableFile", "atomic_save_safetensors", "atomic_write_text",
           "fsync_dir", "read_model_file", "read_safetensors", "save_model"]

MODEL_FILE = "model.safetensors"
MODEL_FORMAT = "trainwell-model/1"


class UnreadableFile(Exception):
    """A file that is not a readable safetensors file; the message says why (one line)."""


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (best effort where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (no half-written files)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_save_safetensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> Path:
    """``safetensors`` save to a temporary file, fsync, rename over ``path``: a crash keeps the old file."""
    from safetensors.torch import save_file

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file(tensors, str(tmp), metadata=metadata)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def read_safetensors(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """Header metadata and tensors of a safetensors file; never unpickles.

    Raises:
        UnreadableFile: not a (complete) safetensors file.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        return meta, load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise UnreadableFile(str(err).splitlines()[0] if str(err) else type(err).__name__) from None


def save_model(model: nn.Module, run_dir: str | Path, meta: dict[str, Any]) -> Path:
    """Write the parameters to ``run_dir/model.safetensors`` (atomically).

    Args:
        model: a model built by :func:`~trainwell.models.build_model`.
        run_dir: an existing run directory (its ``config.yaml`` holds the structure).
        meta: what the model knows of the data (``DataSpec.to_dict()``).
    """
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return atomic_save_safetensors(Path(run_dir) / MODEL_FILE, state,
                                   {"format": MODEL_FORMAT, "data": json.dumps(meta)})


def read_model_file(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """Header and tensors of a saved ``model.safetensors`` (never unpickles).

    Raises:
        TrainwellError: missing, unreadable, or not a trainwell model.
    """
    if not path.is_file():
        raise TrainwellError(f"no saved model at {path}")
    try:
        header, state = read_safetensors(path)
    except UnreadableFile as err:
        raise TrainwellError(f"{path} is not a readable safetensors file ({err})") from None
    if header.get("format") != MODEL_FORMAT:
        raise TrainwellError(f"{path} is not a trainwell model (format {header.get('format')!r})")
    return header, state
