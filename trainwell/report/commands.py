"""The ``trainwell report``, ``serve`` and ``playground`` commands (registered by :mod:`trainwell.cli`)."""

from __future__ import annotations

import webbrowser
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

__all__ = ["playground", "report", "serve"]

out = Console(highlight=False, soft_wrap=True)


def report(
    runs: Annotated[list[Path], typer.Argument(help="run directories: one gives its report, several compare; "
                                                "or one study directory of trainwell tune")],
    out_file: Annotated[Optional[Path], typer.Option("--out", "-o", help="the HTML file (default RUN/report.html; "
                                                     "needed with several runs)")] = None,
    open_: Annotated[bool, typer.Option("--open", help="open it in the default browser")] = False,
) -> None:
    """Write one self-contained HTML page of a run: curves, findings where they happened, per-layer plots,
    repairs, the data audit, metrics and config. Nothing else in the run directory changes. Of a study: its
    optimisation history, parameter importances, trials (each linked to its run's report) and best config."""
    from trainwell.report import write_report

    path = write_report(runs, out_file)
    out.print(f"report: {path}", markup=False)
    if open_:
        webbrowser.open(path.resolve().as_uri())


def serve(
    runs_dir: Annotated[Path, typer.Argument(help="a run directory, or a directory of runs")] = Path("runs"),
    port: Annotated[int, typer.Option(help="port (0: any free one)", min=0, max=65535)] = 8000,
    host: Annotated[str, typer.Option(help="address to bind; 127.0.0.1 keeps it to this machine")] = "127.0.0.1",
) -> None:
    """Serve a read-only live view of runs: it lists them and follows a running one as it trains."""
    from trainwell.report.serve import RunsServer

    server = RunsServer(runs_dir, host=host, port=port)
    _run(server, f"serving {server.root} at {server.url} (read-only; Ctrl+C stops)", False)


def playground(
    port: Annotated[int, typer.Option(help="port (0: any free one)", min=0, max=65535)] = 8001,
    host: Annotated[str, typer.Option(help="address to bind; 127.0.0.1 keeps it to this machine")] = "127.0.0.1",
    open_: Annotated[bool, typer.Option("--open", help="open it in the default browser")] = False,
) -> None:
    """A page to play with a small network on 2-D data: every knob a config key, the doctor watching live."""
    from trainwell.playground import PlaygroundServer

    server = PlaygroundServer(host=host, port=port)
    _run(server, f"playground at {server.url} (Ctrl+C stops; nothing is kept unless you export)", open_)


def _run(server, line: str, open_: bool) -> None:
    """Say where it serves, then serve until Ctrl+C; the server is closed however it ends."""
    out.print(line, markup=False)
    if open_:
        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
