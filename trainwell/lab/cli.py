"""``trainwell lab``: list the experiments, run them, and make one HTML page of the results."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from trainwell.errors import TrainwellError

__all__ = ["lab_app"]

lab_app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                      help="The lab: every claim of the notes, run, measured, plotted and judged.")
_out = Console(highlight=False, soft_wrap=True)

_STYLE = {"confirmed": "green", "refuted": "red", "inconclusive": "yellow", "error": "bold red"}


@lab_app.command("list")
def list_() -> None:
    """Each experiment: its name, the claim in one line, and its source (the notes' section and the paper)."""
    from trainwell.lab import EXPERIMENTS

    table = Table(title=f"{len(EXPERIMENTS)} experiments (trainwell lab run NAME|all)", title_justify="left")
    for col in ("name", "claim", "source"):
        table.add_column(col, overflow="fold")
    for e in EXPERIMENTS.values():
        table.add_row(e.name, e.claim, e.source)
    _out.print(table)


@lab_app.command("run")
def run(
    names: Annotated[list[str], typer.Argument(help="experiment names, or all")],
    quick: Annotated[bool, typer.Option("--quick", help="fewer steps and seeds (still judged)")] = False,
    seeds: Annotated[Optional[int], typer.Option(help="seeds per experiment (default: each experiment's)")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="directory (default lab-results); one "
                                                "holding an earlier run gets a new run-N inside")] = None,
    jobs: Annotated[int, typer.Option(help="experiments run at the same time, each in its own process")] = 1,
) -> None:
    """Run experiments; write DIR/NAME/ (result.json, plots, README.md) and print one line each."""
    from trainwell.lab import check_names
    from trainwell.lab.runner import lab_dir, run_many

    chosen = check_names(list(names))
    if seeds is not None and seeds < 1:
        raise TrainwellError(f"--seeds must be >= 1, got {seeds}")
    if jobs < 1:
        raise TrainwellError(f"--jobs must be >= 1, got {jobs}")
    root = lab_dir(out)
    counts: dict[str, int] = {}
    with Progress(TextColumn("lab"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.description}"), console=_out, transient=True) as bar:
        task = bar.add_task("", total=len(chosen))

        def done(result) -> None:
            from trainwell.lab import EXPERIMENTS

            counts[result.verdict] = counts.get(result.verdict, 0) + 1
            numbers = result.reason if result.verdict == "error" else EXPERIMENTS[result.name].summary(
                result.measurements)
            bar.console.print(f"{result.name:<24} [{_STYLE[result.verdict]}]{result.verdict:<12}[/] "
                              f"{result.seconds:6.1f}s  {_escape(numbers)}")
            bar.advance(task)

        run_many(chosen, root, quick=quick, seeds=seeds, jobs=jobs, on_done=done)
    _out.print(", ".join(f"{n} {v}" for v, n in counts.items()) + f"; results in {root} "
               f"(trainwell lab report {root})", markup=False)


@lab_app.command("report")
def report(
    directory: Annotated[Path, typer.Argument(help="a directory written by `trainwell lab run`")],
    output: Annotated[Optional[Path], typer.Option("--output", help="the HTML file (default DIR/report.html)")]
    = None,
) -> None:
    """One self-contained HTML page: every experiment, its plots (embedded) and its verdict."""
    from trainwell.lab.report import write_report

    path = write_report(directory, output)
    _out.print(f"report: {path}", markup=False)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
