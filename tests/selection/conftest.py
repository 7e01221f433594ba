"""Fixtures of the tuning tests: tiny trials, and a throwaway PostgreSQL server started by the tests themselves.

The server comes from Debian's ``postgresql`` package (``initdb`` and
``pg_ctl`` under /usr/lib/postgresql/<version>/bin): a cluster in a temporary
directory, owned by the ``postgres`` user when the tests run as root (initdb
refuses root), on a free loopback port with ``fsync=off``, stopped at the end.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest


@pytest.fixture
def tiny_base():
    """A base config whose trials train in well under a second: moons, 200 rows, 3 epochs."""
    return {"name": "tiny", "seed": 3,
            "data": {"name": "moons", "n_samples": 200, "batch_size": 32},
            "model": {"name": "mlp", "depth": 2, "width": 16},
            "optim": {"name": "adam", "lr": 0.05},
            "train": {"epochs": 3, "progress": False}}


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url():
    """``postgresql://postgres@127.0.0.1:PORT/tune`` of a server started for this session, stopped after it."""
    pytest.importorskip("psycopg2", reason="psycopg2-binary (the tune extra) is not installed")
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL binaries (initdb, pg_ctl): apt-get install -y postgresql")
    as_root = os.geteuid() == 0
    if as_root and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL as the postgres user")
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    root = Path(tempfile.mkdtemp(prefix="trainwell-pg-"))
    if as_root:
        shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", _free_port()

    def run(*cmd: str) -> None:
        subprocess.run([*prefix, *cmd], check=True, capture_output=True, timeout=120)

    try:
        run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-t", "60", "start",
            "-o", f"-p {port} -c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                  f"-c listen_addresses=127.0.0.1 -k {root}")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
        log = (root / "log").read_text() if (root / "log").exists() else getattr(err, "stderr", b"").decode()
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {log[-2000:]}")
    try:
        run(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "tune")
        yield f"postgresql://postgres@127.0.0.1:{port}/tune"
    finally:
        subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)
