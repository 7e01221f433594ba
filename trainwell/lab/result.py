"""What running an experiment gives back: the content of ``result.json``, and its plots drawn from it alone."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainwell.lab.experiments import EXPERIMENTS
from trainwell.lab.plotting import agg

__all__ = ["Result", "draw"]

Measurements = dict[str, Any]


@dataclass
class Result:
    """What :func:`trainwell.lab.run` returns: the content of ``result.json``, and where it lies."""

    name: str
    claim: str
    source: str
    criterion: str
    verdict: str
    reason: str
    measurements: Measurements
    config: dict[str, Any]
    seeds: list[int]
    seconds: float
    quick: bool
    setup: str = ""
    error: str | None = None
    dir: Path | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("dir")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], directory: Path | None = None) -> Result:
        names = {f.name for f in dataclasses.fields(cls)} - {"dir"}
        return cls(**{k: v for k, v in d.items() if k in names}, dir=directory)

    @classmethod
    def read(cls, directory: str | Path) -> Result:
        directory = Path(directory)
        return cls.from_dict(json.loads((directory / "result.json").read_text(encoding="utf-8")), directory)

    def plot(self, directory: str | Path | None = None) -> list[Path]:
        """Draw this result's plots (from its result.json content only) into ``directory``.

        Default: the result's own directory, or a new temporary one when it has none.
        Returns the PNG paths.
        """
        return draw(self, directory)


def draw(result: Result, directory: str | Path | None = None) -> list[Path]:
    """Draw ``result``'s plots into ``directory`` from its result.json content only (Agg backend)."""
    directory = Path(directory) if directory is not None else (result.dir or Path(tempfile.mkdtemp(prefix="lab-")))
    directory.mkdir(parents=True, exist_ok=True)
    if result.verdict == "error" or result.name not in EXPERIMENTS:
        return []
    data = json.loads(json.dumps(result.to_dict()))  # exactly what result.json holds
    with agg():
        return [directory / name for name in EXPERIMENTS[result.name].plot(data, directory)]
