"""What a study leaves in its directory: ``best.yaml``, ``trials.csv``, the plots and ``summary.json``.

Written from the study's storage alone, after its workers are done (and
again by every later session), so any process can write them again.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

from trainwell.io import atomic_write_text
from trainwell.selection.study import counted

try:
    from optuna.trial import TrialState
except ImportError:  # the `tune` extra
    TrialState = None

__all__ = ["OUTPUT_FILES", "STUDY_FILE", "TRIAL_COLUMNS", "died_of", "read_marker", "summary_line", "write_outputs"]

STUDY_FILE = "study.json"  # marks a study directory: its name, storage, metric and space
OUTPUT_FILES = ("trials.csv", "best.yaml", "summary.json", "history.png", "importance.png", "journal.log")
# trials.csv: number, state, value, then one column per parameter (sorted), then these
TRIAL_COLUMNS = ("epochs", "best_epoch", "seconds", "died_of", "symptom", "cause", "error", "retry_of",
                 "retried_as", "dir")


def read_marker(root: Path) -> dict[str, Any] | None:
    """The ``study.json`` of a directory, or None."""
    try:
        return json.loads((root / STUDY_FILE).read_text())
    except (OSError, ValueError):
        return None


def died_of(trial: Any) -> str:
    """Why a pruned or failed trial ended: a doctor's symptom, ``pruner``, an error, or a lost worker."""
    attrs = trial.user_attrs
    if trial.state == TrialState.PRUNED:
        return attrs.get("pruned_by", "pruner")
    if "error" in attrs:
        return "error"
    return "lost (its worker was killed or interrupted)"


def _breakdown(trials: list[Any]) -> dict[str, int]:
    return dict(Counter(died_of(t) for t in trials).most_common())


def summary_line(summary: dict[str, Any]) -> str:
    """``"20 trials: 8 complete, 12 pruned (7 learning_rate_too_high, 5 pruner), 0 failed"``."""
    c = summary["counts"]
    parts = [f"{c['complete']} complete"]
    for state in ("pruned", "failed"):
        why = summary[state]
        parts.append(f"{c[state]} {state}" + (f" ({', '.join(f'{n} {k}' for k, n in why.items())})" if why else ""))
    if c["running"] or c["waiting"]:
        parts.append(f"{c['running']} running, {c['waiting']} waiting")
    return f"{c['trials']} trials: " + ", ".join(parts)


def _trials_csv(trials: list[Any], retried_as: dict[int, int]) -> str:
    params = sorted({k for t in trials for k in t.params})
    columns = ["number", "state", "value", *params, *TRIAL_COLUMNS]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for t in trials:
        a = t.user_attrs
        history = t.system_attrs.get("retry_history", [])
        writer.writerow([t.number, t.state.name, "" if t.value is None else repr(t.value),
                         *[t.params.get(p, "") for p in params],
                         a.get("epochs", ""), a.get("best_epoch", ""), a.get("seconds", ""),
                         died_of(t) if t.state in (TrialState.PRUNED, TrialState.FAIL) else "",
                         a.get("symptom", ""), a.get("cause", ""), a.get("error", ""),
                         history[-1] if history else "", retried_as.get(t.number, ""), a.get("dir", "")])
    return buf.getvalue()


def _plots(study: Any, root: Path, complete: int) -> tuple[dict[str, str], list[str]]:
    """Optuna's optimisation history and parameter importances as PNG files; notes for those skipped."""
    import warnings

    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as views

    files, notes = {}, []
    wanted = [("history", "optimisation history", views.plot_optimization_history, 1),
              ("importance", "parameter importances", views.plot_param_importances, 2)]
    for key, what, plot, needs in wanted:
        if complete < needs:
            notes.append(f"no {what} plot: it needs {needs} complete trial{'s' * (needs > 1)}, the study has "
                         f"{complete}")
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # experimental in Optuna
                axes = plot(study)
            figure = axes.figure
            figure.tight_layout()
            figure.savefig(root / f"{key}.png", dpi=110)
            plt.close(figure)
            files[key] = f"{key}.png"
        except (ValueError, RuntimeError, ZeroDivisionError) as err:  # e.g. every complete trial had the same point
            notes.append(f"no {what} plot: {str(err).splitlines()[0] if str(err) else type(err).__name__}")
    return files, notes


def write_outputs(study: Any, root: Path, metric: str, budget: int, notes: list[str], plots: bool = True
                  ) -> dict[str, Any]:
    """Write ``trials.csv``, ``best.yaml`` (the best trial's config.yaml), the plots (unless ``plots`` is False)
    and ``summary.json``."""
    trials = study.get_trials(deepcopy=False)
    retried_as = {t.system_attrs["retry_history"][-1]: t.number for t in trials if t.system_attrs.get("retry_history")}
    kept = counted(trials)
    by = {s: [t for t in kept if t.state == s] for s in TrialState}
    complete = by[TrialState.COMPLETE]
    summary: dict[str, Any] = {
        "study": study.study_name, "metric": metric, "direction": study.direction.name.lower(),
        "counts": {"trials": len(kept), "budget": budget, "complete": len(complete),
                   "pruned": len(by[TrialState.PRUNED]), "failed": len(by[TrialState.FAIL]),
                   "running": len(by[TrialState.RUNNING]), "waiting": len(by[TrialState.WAITING]),
                   "retried": len(trials) - len(kept)},
        "pruned": _breakdown(by[TrialState.PRUNED]), "failed": _breakdown(by[TrialState.FAIL]),
        "errors": sorted({t.user_attrs["error"] for t in by[TrialState.FAIL] if "error" in t.user_attrs}),
        "trials_csv": "trials.csv", "notes": list(notes)}
    atomic_write_text(root / "trials.csv", _trials_csv(trials, retried_as))
    if complete:
        best = study.best_trial
        summary["best"] = {"number": best.number, "value": best.value, "params": best.params,
                           "changes": best.user_attrs.get("changes", ""), "dir": best.user_attrs.get("dir", "")}
        config = root / best.user_attrs.get("dir", f"trial-{best.number}") / "config.yaml"
        try:
            atomic_write_text(root / "best.yaml", config.read_text(encoding="utf-8"))
            summary["best_yaml"] = "best.yaml"
        except OSError:  # a trial of another machine: its directory is there, not here
            summary["notes"].append(f"no best.yaml: the best trial's directory {config.parent} is not on this "
                                    "machine (it ran on another worker host)")
    else:
        summary["notes"].append("no complete trial: no best.yaml")
    files, plot_notes = _plots(study, root, len(complete)) if plots else ({}, ["no plots: plots=False"])
    summary["plots"] = files
    summary["notes"] += plot_notes
    summary["line"] = summary_line(summary)
    atomic_write_text(root / "summary.json", json.dumps(summary, indent=2))
    summary["dir"] = str(root)
    return summary
