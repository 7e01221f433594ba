"""Files: atomic writes, safetensors reads, and the saved-model format.

The model file (``model.safetensors``) holds a model's tensors and, in its
header, the format tag and what the model needs to know about the data
(:class:`~trainwell.data.DataSpec` as JSON) and a CRC-32 over that JSON and
every tensor (the checkpoints' checksum), so that a damaged file is refused
in one line instead of giving NaN; its structure is the run's
``config.yaml``. Reading a model file never unpickles anything.

Files are written through a temporary file and a rename, created with mode
0666 less the process's umask, like any other tool's files.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import zlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainwell.errors import TrainwellError

__all__ = ["DISK_ERRORS", "MODEL_FILE", "MODEL_FORMAT", "UnreadableFile", "atomic_save_safetensors",
           "atomic_write_text", "fsync_dir", "read_model_file", "read_safetensors", "save_model", "tensors_crc32"]

MODEL_FILE = "model.safetensors"
MODEL_FORMAT = "trainwell-model/1"


class UnreadableFile(Exception):
    """A file that is not a readable safetensors file; the message says why (one line)."""


# The errors of a file system that will not take a file: full, over quota, read-only, not permitted, too big.
DISK_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG})
_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def _os_error(err: BaseException, path: Path) -> BaseException:
    """``err`` as an OSError naming ``path`` (the file being written, not its temporary file).

    safetensors reports a failed write as ``SafetensorError: Error while
    serializing: I/O error: No space left on device (os error 28)``: its errno
    is read back from that text. Anything else is returned as it is.
    """
    number = err.errno if isinstance(err, OSError) else None
    if number is None and (m := _OS_ERROR.search(str(err))) and type(err).__name__ == "SafetensorError":
        number = int(m.group(1))
    if number is None:
        return err
    return OSError(number, os.strerror(number), str(path))


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


def tensors_crc32(text: str, tensors: dict[str, torch.Tensor]) -> str:
    """CRC-32 (8 hex digits) over ``text`` (UTF-8), then every tensor's bytes in the order of their keys.

    The checksum of checkpoints and model files: a flipped bit anywhere in the
    header text or the tensors changes it.

    Example:
        >>> tensors_crc32("", {})
        '00000000'
    """
    crc = zlib.crc32(text.encode())
    for key in sorted(tensors):
        t = tensors[key]
        if t.numel():
            crc = zlib.crc32(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy(), crc)
    return f"{crc:08x}"


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new file next to ``path``, opened for writing, mode 0666 less the umask (mkstemp's is 0600)."""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (no half-written files).

    The file gets mode 0666 less the process's umask, as ``open(path, "w")`` would give it.

    Raises:
        OSError: the file system refused (full, read-only, ...), naming ``path``.
    """
    try:
        fd, tmp = _create_temporary(Path(path))
    except OSError as err:
        raise _os_error(err, path) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise _os_error(err, path) from None
        raise


def atomic_save_safetensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> Path:
    """``safetensors`` save to a temporary file, fsync, rename over ``path``: a crash keeps the old file.

    The file gets mode 0666 less the process's umask.

    Raises:
        OSError: the file system refused (full, read-only, ...), naming ``path``; safetensors' own error for a
            failed write is turned into the OSError it reports.
    """
    from safetensors.torch import save_file

    try:
        fd, tmp = _create_temporary(path)  # its mode is 0666 less the umask: safetensors' own file would be 0600
    except OSError as err:
        raise _os_error(err, path) from None
    mode = os.fstat(fd).st_mode & 0o777
    os.close(fd)
    try:
        save_file(tensors, str(tmp), metadata=metadata)
        os.chmod(tmp, mode)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        converted = _os_error(err, path)
        if converted is not err:
            raise converted from None
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
    data = json.dumps(meta)
    return atomic_save_safetensors(Path(run_dir) / MODEL_FILE, state,
                                   {"format": MODEL_FORMAT, "data": data, "crc32": tensors_crc32(data, state)})


def read_model_file(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """Header and tensors of a saved ``model.safetensors`` (never unpickles).

    A file with a checksum (``crc32``) must match it; older files without one load as they are.

    Raises:
        TrainwellError: missing, unreadable, damaged, or not a trainwell model.
    """
    if not path.is_file():
        raise TrainwellError(f"no saved model at {path}")
    try:
        header, state = read_safetensors(path)
    except UnreadableFile as err:
        raise TrainwellError(f"{path} is not a readable safetensors file ({err})") from None
    if header.get("format") != MODEL_FORMAT:
        raise TrainwellError(f"{path} is not a trainwell model (format {header.get('format')!r})")
    if "crc32" in header and tensors_crc32(header.get("data", ""), state) != header["crc32"]:
        raise TrainwellError(f"{path} is corrupt: its checksum does not match its contents (the file was changed "
                             "after training wrote it); restore it, or train again")
    return header, state
