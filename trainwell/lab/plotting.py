"""Small matplotlib helpers for the lab's plots (Agg backend: files only, no window)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["agg", "bars", "curves", "figure", "save"]


@contextmanager
def agg() -> Iterator[None]:
    """Draw with the Agg backend (no display needed), restoring the previous backend afterwards."""
    import matplotlib

    previous = matplotlib.get_backend()
    matplotlib.use("Agg", force=True)
    try:
        yield
    finally:
        import matplotlib.pyplot as plt

        plt.close("all")
        if previous.lower() != "agg":
            try:
                matplotlib.use(previous, force=True)
            except Exception:  # a GUI backend that cannot start here: Agg stays
                pass


def figure(ncols: int = 1, nrows: int = 1, width: float = 5.0, height: float = 3.6) -> tuple[Any, Any]:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    return fig, axes


def save(fig: Any, directory: Path, name: str, title: str | None = None) -> str:
    """Save ``fig`` as ``directory/name`` (PNG) and close it; returns the file name."""
    import matplotlib.pyplot as plt

    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(directory / name, dpi=80)
    plt.close(fig)
    return name


def curves(ax: Any, series: dict[str, list[float]], *, x: list[float] | None = None, xlabel: str = "",
           ylabel: str = "", log: bool = False, title: str = "") -> None:
    """One line per entry of ``series`` (None and non-numbers skipped)."""
    for label, ys in series.items():
        xs = x if x is not None else list(range(len(ys)))
        pts = [(a, b) for a, b in zip(xs, ys) if isinstance(b, (int, float)) and (not log or b > 0)]
        if pts:
            ax.plot([a for a, _ in pts], [b for _, b in pts], marker="." if len(pts) < 40 else None, label=label)
    if log:
        ax.set_yscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def bars(ax: Any, values: dict[str, float | None], *, ylabel: str = "", title: str = "", log: bool = False) -> None:
    """One bar per entry (None and non-numbers drawn as 0 and labelled n/a)."""
    labels = list(values)
    heights = [v if isinstance(v, (int, float)) else 0.0 for v in values.values()]
    ax.bar(range(len(labels)), heights, color=[f"C{i % 10}" for i in range(len(labels))])
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    if log:
        ax.set_yscale("log")
    ax.set(ylabel=ylabel, title=title)
    ax.grid(alpha=0.3, axis="y")
