"""The ``trainwell`` command.

Exit codes: 0 a run that completed (or stopped early by early stopping); 2 a
user error (a bad config, an unknown name, a missing file: one line on stderr,
nothing written); 3 a run that failed (its loss became NaN: it says where, the
model file holds the last finite weights); 128 + N a run interrupted by signal
N (130 for Ctrl-C, 143 for SIGTERM) after writing a checkpoint.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from trainwell.errors import TrainwellError
from trainwell.lab.cli import lab_app
from trainwell.report.commands import playground, report, serve

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  help="Train neural networks so that training goes right.")
out = Console()
err = Console(stderr=True, highlight=False, soft_wrap=True)
app.add_typer(lab_app, name="lab")
app.command()(report)
app.command()(serve)
app.command()(playground)

__all__ = ["EXIT_FAILED", "app", "main"]

EXIT_FAILED = 3  # a run that failed: its loss became NaN


def _number(value: object) -> str:
    return "-" if not isinstance(value, (int, float)) else f"{value:.4f}"


def _metrics_table(metrics: dict) -> Table:
    """Loss and accuracy per split; balanced and sequence accuracy where they apply."""
    splits = [s for s in ("train", "val", "test") if s in metrics]
    extra = [k for k in ("balanced_accuracy", "sequence_accuracy") if any(k in metrics[s] for s in splits)]
    table = Table(title="final metrics", caption="of the final model on each whole split, in evaluation mode; "
                  "the progress bar's train loss is the running mean over the epoch's batches, in training mode")
    for col in ("split", "loss", "accuracy", *(k.replace("_", " ") for k in extra)):
        table.add_column(col, justify="right" if col != "split" else "left")
    for split in splits:
        m = metrics[split]
        table.add_row(split, _number(m["loss"]), _number(m["accuracy"]), *(_number(m.get(k)) for k in extra))
    return table


def _recall_line(recall: list) -> str:
    return "per-class recall (test): " + " ".join(
        f"{i}:{'-' if r is None else f'{r:.2f}'}" for i, r in enumerate(recall))


# --data and --target of train, cv, ensemble and tune: the same loader and checks (runs.prepare.record_data)
DataOption = Annotated[Optional[str], typer.Option(help="a data set name, or your own file: .csv (header optional, "
                                                   "label last) or .npz (arrays x, y); split by the config")]
TargetOption = Annotated[Optional[str], typer.Option(help="the .csv label column: a header name or a number")]


@app.command()
def train(
    config: Annotated[Optional[Path], typer.Argument(help="YAML config; defaults apply to every key it omits")] = None,
    set_: Annotated[list[str], typer.Option("--set", "-s", help="override a key: --set model.width=256")] = [],
    out_dir: Annotated[Optional[Path], typer.Option("--out", "-o", help="run directory (new or empty)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar, and no findings as they appear; "
                                        "the summary at the end still names warnings and errors")] = False,
    resume: Annotated[Optional[Path], typer.Option(help="continue this run directory from its latest checkpoint")] = None,
    data: DataOption = None,
    target: TargetOption = None,
    report_: Annotated[bool, typer.Option("--report", help="write RUN/report.html at the end (see `trainwell "
                                          "report`)")] = False,
    nproc: Annotated[Optional[int], typer.Option("--nproc", help="train data-parallel on N processes of this "
                                                 "machine (torchrun's elastic agent; gloo on CPU)")] = None,
) -> None:
    """Train a model (seed 004's process) and write a run directory."""
    from trainwell.config import load_config
    from trainwell.loop.distributed import is_main
    from trainwell.runs import train as run_train

    set_ = [*set_, *_data_overrides(data, target)]
    if nproc is not None and nproc != 1:
        raise typer.Exit(_launch(nproc, config, set_, out_dir, quiet, resume, report_))

    if resume is not None:
        if out_dir is not None:
            raise TrainwellError("--resume continues a run in its own directory; leave out --out")
        run = run_train(config, overrides=set_, resume=resume, progress=False if quiet else None,
                        handle_signals=True)
    else:
        run = run_train(load_config(config, set_), out=out_dir, progress=False if quiet else None,
                        handle_signals=True)
    if not is_main():  # a data-parallel run's other processes: rank 0 reports, all end with its exit code
        raise typer.Exit(EXIT_FAILED if run.metrics.get("status") == "failed" else 0)
    out.print(_metrics_table(run.metrics))
    out.print(_recall_line(run.metrics["test"]["per_class_recall"]))
    by = run.metrics.get("best_epoch_by", "val_loss").replace("_", " ")
    out.print(f"best epoch (by {by}): {run.metrics['best_epoch']}   "
              f"parameters: {run.metrics['n_parameters']:,}   time: {run.metrics['train_seconds']:.1f}s")
    problems = [f for f in run.findings if f.severity != "info"]
    repairs = run.diagnosis.get("repairs", [])
    details = run.dir / "diagnosis.json"
    if report_:
        from trainwell.report import write_report

        details = write_report(run.dir)
    if problems or repairs:
        out.print(f"doctor: {', '.join(f'{f.severity} {f.symptom}' for f in problems) or 'healthy'}"
                  + (f"; {len(repairs)} repair(s): " + "; ".join(" ".join(r["changes"]) + (
                      f" (from epoch {r['from_epoch']})" if r.get("from_epoch") else "") for r in repairs)
                     if repairs else "") + f" (details: {details})", markup=False)
    elif run.config.doctor.enabled:
        out.print("doctor: nothing found above info" + (f" (report: {details})" if report_ else ""), markup=False)
    elif report_:
        out.print(f"report: {details}", markup=False)
    out.print(f"run directory: {run.dir}")
    stopped = run.metrics.get("stopped")
    if run.metrics.get("status") == "failed":
        where = f"epoch {stopped['epoch']}" + (f", step {stopped['step']}" if stopped.get("step") is not None else "")
        kept = run.metrics.get("weights", "last epoch")
        held = "the last finite weights" if kept == "last epoch" else f"the weights of the {kept}"
        err.print(f"stopped at {where}: {stopped['reason']}; the model holds {held} (details: {details})",
                  markup=False)
        raise typer.Exit(EXIT_FAILED)


def _launch(nproc: int, config: Path | None, set_: list[str], out_dir: Path | None, quiet: bool,
            resume: Path | None, report_: bool) -> int:
    """``train`` again on ``nproc`` processes under torchrun's elastic agent; a bad config is refused first."""
    from trainwell.config import load_config
    from trainwell.loop.distributed import launch, launched_world

    if nproc < 1:
        raise TrainwellError(f"--nproc takes a number of processes >= 1, got {nproc}")
    if launched_world() > 1:
        raise TrainwellError("this process is already one of torchrun's; leave out --nproc")
    if resume is None:
        cfg = load_config(config, set_)  # one line now, not one per process
        _check_gpus(cfg.train.device, nproc)
    args = [*([str(config)] if config is not None else []), *(a for s in set_ for a in ("--set", s)),
            *(["--out", str(out_dir)] if out_dir is not None else []), *(["--quiet"] if quiet else []),
            *(["--resume", str(resume)] if resume is not None else []), *(["--report"] if report_ else [])]
    return launch(nproc, ["train", *args])


def _check_gpus(device: str, nproc: int) -> None:
    """A CUDA run on more processes than GPUs: each rank takes GPU LOCAL_RANK (untested: no GPUs here)."""
    import torch

    if device != "cpu" and torch.cuda.is_available() and nproc > torch.cuda.device_count():
        raise TrainwellError(f"--nproc {nproc} puts one process on each GPU, and this machine has "
                             f"{torch.cuda.device_count()}; use --nproc {torch.cuda.device_count()} or fewer")


def _data_overrides(data: str | None, target: str | None) -> list[str]:
    """``--data`` and ``--target`` as config overrides (a file's path quoted, so YAML keeps it a string)."""
    from trainwell.runs.prepare import dataset_names

    if data is None:
        return [] if target is None else [f"data.target={json.dumps(target)}"]
    if data in dataset_names():
        if target is not None:
            raise TrainwellError("--target names a column of your own .csv file, not of an embedded data set")
        return [f"data.name={data}"]
    return [f"data.path={json.dumps(data)}", f"data.target={json.dumps(target)}"]


@app.command()
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="a run directory written by `trainwell train`")],
    data: Annotated[Optional[str], typer.Option(help="data set name, or .npz (x, y) / .csv (label last) file")] = None,
    target: Annotated[Optional[str], typer.Option(help="the .csv label column: a header name or a number")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Report a saved model's metrics on its test split (or on --data)."""
    from trainwell.runs import evaluate_run

    result = evaluate_run(run_dir, data, target)
    if as_json:
        out.print_json(json.dumps(result))
        return
    out.print(f"rows: {result['rows']}   loss: {result['loss']:.4f}   accuracy: {result['accuracy']:.4f}")
    out.print(_recall_line(result["per_class_recall"]))


@app.command()
def predict(
    run_dir: Annotated[Path, typer.Argument(help="a run (or ensemble) directory")],
    file: Annotated[Path, typer.Argument(help="rows to predict: .csv (header optional) or .npz (array x)")],
    out_file: Annotated[Optional[Path], typer.Option("--out", "-o", help="CSV to write (default: standard output)")]
    = None,
    proba: Annotated[bool, typer.Option("--proba", help="add each class's probability (p_0, p_1, ...)")] = False,
    target: Annotated[Optional[str], typer.Option(help="a .csv column to leave out (the labels, if the file has "
                                                  "them): a header name or a number")] = None,
) -> None:
    """Predict the class of every row of FILE with a saved model; write a CSV."""
    from trainwell.io import atomic_write_text
    from trainwell.runs.datafile import read_features
    from trainwell.runs.evaluation import predict as run_predict

    if out_file is not None and out_file.resolve() == file.resolve():
        raise TrainwellError(f"--out {out_file} would overwrite the input file; choose another name")
    result = run_predict(run_dir, read_features(file, target))
    text = _predictions_csv(result["predictions"], result["probabilities"], proba)
    if out_file is None:
        sys.stdout.write(text)
        return
    try:
        atomic_write_text(out_file, text)
    except OSError as e:
        raise TrainwellError(f"cannot write {out_file}: {e.strerror or e}") from None
    err.print(f"wrote {len(result['predictions'])} predictions to {out_file}", markup=False)


def _predictions_csv(predictions, probabilities, proba: bool) -> str:
    if predictions.dim() > 1:  # a sequence task: one predicted token per step
        if proba:
            raise TrainwellError("--proba gives one probability per class and row; a sequence task has a class "
                                 "per token (leave out --proba)")
        head = [f"prediction_{t}" for t in range(predictions.shape[1])]
        rows = [",".join(map(str, r)) for r in predictions.tolist()]
    else:
        head = ["prediction"] + ([f"p_{c}" for c in range(probabilities.shape[1])] if proba else [])
        rows = [",".join([str(c)] + ([f"{v:.8g}" for v in p] if proba else []))
                for c, p in zip(predictions.tolist(), probabilities.tolist())]
    return "\n".join([",".join(head), *rows]) + "\n"


@app.command()
def show(run_dir: Annotated[Path, typer.Argument(help="a run directory written by `trainwell train`")]) -> None:
    """Summarise a past run from its files (history, metrics, findings, repairs); never trains."""
    from trainwell.doctor import Finding
    from trainwell.runs.evaluation import run_summary

    s = run_summary(run_dir)
    out.print(f"run: {s['dir']} ({s['status']})   data: {s['data']}   model: {s['model']}", markup=False)
    out.print(f"epochs: {s['epochs']} of {s['planned_epochs']}   best epoch: {s['best_epoch']} (lowest val loss)",
              markup=False)
    if s["final"]:
        table = Table(title="final metrics" if s["status"] == "finished" else "last epoch (no metrics.json)")
        keys = [k for k in ("loss", "accuracy", "sequence_accuracy", "balanced_accuracy")
                if any(k in m for m in s["final"].values())]
        for col in ("split", *keys):
            table.add_column(col, justify="left" if col == "split" else "right")
        for split, m in s["final"].items():
            table.add_row(split, *("-" if m.get(k) is None else f"{m[k]:.4f}" for k in keys))
        out.print(table)
    findings = [Finding(**f) for f in s["findings"]]
    out.print(f"findings: {len(findings) or 'none'}", markup=False)
    for f in findings:
        out.print(f"  {f}", markup=False)
    for r in s["repairs"]:
        before, after = r.get("before", {}), r.get("after", {})
        change = f"val accuracy {before['val_accuracy']:.4f} -> " if "val_accuracy" in before else ""
        change += f"{after['val_accuracy']:.4f}" if "val_accuracy" in after else "(not finished)"
        cause = f" ({r['cause']})" if r.get("cause") else ""
        start = f", from epoch {r['from_epoch']}" if r.get("from_epoch") else ""
        out.print(f"repair {r['attempt']}: {r['symptom']}{cause} -> {' '.join(r['changes'])}{start}; {change}",
                  markup=False)


@app.command()
def datasets() -> None:
    """List the embedded data sets with shapes, splits and class counts."""
    from trainwell.data.datasets import DATASETS, load_data

    table = Table(title="embedded data sets (generated or bundled locally; `trainwell components` describes them)")
    for col in ("name", "kind", "shape", "classes", "train/val/test", "class counts (train)"):
        table.add_column(col, overflow="fold")
    for entry in DATASETS:
        d = load_data(entry.name)
        counts = d.class_counts().tolist()
        table.add_row(entry.name, d.kind, str(d.input_shape), str(d.n_classes),
                      f"{len(d.train)}/{len(d.val)}/{len(d.test)}", " ".join(map(str, counts)))
    out.print(table)


@app.command()
def components() -> None:
    """List every named choice: data sets, models, activations, norms, inits, optimizers, losses."""
    from trainwell.components import REGISTRIES

    for kind, registry in REGISTRIES.items():
        table = Table(title=f"{kind} (config key: {_CONFIG_KEYS[kind]})", title_justify="left")
        table.add_column("name", style="bold")
        table.add_column("description")
        for entry in registry:
            table.add_row(entry.name, entry.description)
        out.print(table)


_CONFIG_KEYS = {"dataset": "data.name", "sampler": "data.imbalance.method", "model": "model.name", "activation": "model.activation",
                "norm": "model.norm", "rnn_norm": "model.rnn_norm", "dropout": "model.dropout_mode",
                "attention": "model.attention", "init": "model.init", "optimizer": "optim.name", "loss": "loss"}


@app.command()
def cv(
    config: Annotated[Optional[Path], typer.Argument(help="YAML config")] = None,
    folds: Annotated[int, typer.Option(help="K of stratified K-fold")] = 5,
    set_: Annotated[list[str], typer.Option("--set", "-s", help="override a key")] = [],
    jobs: Annotated[int, typer.Option(help="worker processes")] = 1,
    final: Annotated[bool, typer.Option(help="then train on train+val for the chosen epoch count")] = False,
    out_dir: Annotated[Optional[Path], typer.Option("--out", "-o", help="directory (new or empty)")] = None,
    data: DataOption = None,
    target: TargetOption = None,
) -> None:
    """K-fold cross-validation: best epoch and score per fold, mean and spread, the epoch count to use."""
    from trainwell.config import load_config
    from trainwell.selection import cross_validate

    result = cross_validate(load_config(config, [*set_, *_data_overrides(data, target)]), folds=folds, jobs=jobs,
                            out=out_dir, final_fit=final)
    table = Table(title=f"{folds}-fold cross-validation")
    for col in ("fold", "best epoch", "val loss", "val accuracy"):
        table.add_column(col, justify="right")
    for f in result["folds"]:
        table.add_row(str(f["fold"]), str(f["best_epoch"]), f"{f['best_val_loss']:.4f}", f"{f['best_val_accuracy']:.4f}")
    m, sd = result["mean"], result["std"]
    table.add_row("mean ± std", f"{m['best_epoch']:.1f} ± {sd['best_epoch']:.1f}",
                  f"{m['best_val_loss']:.4f} ± {sd['best_val_loss']:.4f}",
                  f"{m['best_val_accuracy']:.4f} ± {sd['best_val_accuracy']:.4f}")
    out.print(table)
    out.print(f"chosen epochs (mean of the best epochs): {result['chosen_epochs']}")
    if "final" in result:
        out.print(f"final fit on train+val: test accuracy {result['final']['test']['accuracy']:.4f} "
                  f"({result['final']['dir']})")
    out.print(f"directory: {result['dir']}")


@app.command()
def tune(
    config: Annotated[Optional[Path], typer.Argument(help="base YAML config")] = None,
    space: Annotated[Optional[Path], typer.Option(help="YAML: config keys -> {log_uniform|uniform|int|choice: ...}")]
    = None,
    trials: Annotated[int, typer.Option(help="the study's total trials (complete, pruned or failed)")] = 20,
    jobs: Annotated[int, typer.Option(help="worker processes on this host")] = 1,
    storage: Annotated[Optional[str], typer.Option(help="postgresql://... or a journal file (default: in --out)")]
    = None,
    study: Annotated[Optional[str], typer.Option(help="study name (default: the config's run_name)")] = None,
    sampler: Annotated[str, typer.Option(help="tpe, random or grid")] = "tpe",
    metric: Annotated[str, typer.Option(help="val_accuracy (maximised) or val_loss (minimised)")] = "val_accuracy",
    timeout: Annotated[Optional[float], typer.Option(help="seconds after which no new trial starts")] = None,
    set_: Annotated[list[str], typer.Option("--set", "-s", help="override a key of the base config")] = [],
    out_dir: Annotated[Optional[Path], typer.Option("--out", "-o", help="study directory (default runs/tune-<study>)")]
    = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
    data: DataOption = None,
    target: TargetOption = None,
) -> None:
    """Search hyper-parameters (Optuna): trials pruned by the median rule and by the doctor; best.yaml reruns."""
    from trainwell.selection.tune import tune as run_tune

    s = run_tune(config, space, trials=trials, jobs=jobs, storage=storage, study=study, sampler=sampler,
                 timeout=timeout, out=out_dir, metric=metric, overrides=[*set_, *_data_overrides(data, target)],
                 progress=not quiet)
    out.print(s["line"], markup=False)
    if "best" in s:
        out.print(f"best: trial {s['best']['number']}, {metric} {s['best']['value']:.4f}: {s['best']['changes']}",
                  markup=False)
    for note in s["notes"] + s["errors"]:
        out.print(f"note: {note}", markup=False)
    out.print(f"study directory: {s['dir']} (best.yaml, trials.csv, summary.json; `trainwell report` draws it)",
              markup=False)


@app.command()
def ensemble(
    config: Annotated[Optional[Path], typer.Argument(help="YAML config")] = None,
    members: Annotated[int, typer.Option(help="number of members")] = 5,
    vary: Annotated[list[str], typer.Option(help="seed, init, or key=v1,v2,... (repeatable)")] = ["seed"],
    combine: Annotated[str, typer.Option(help="average (probabilities) or vote")] = "average",
    bagging: Annotated[bool, typer.Option(help="a bootstrap sample of the rows per member")] = False,
    balance: Annotated[bool, typer.Option(help="each member on a balanced under-sample (EasyEnsemble)")] = False,
    method: Annotated[str, typer.Option(help="members (independent), cascade (BalanceCascade) or boost (SAMME)")]
    = "members",
    set_: Annotated[list[str], typer.Option("--set", "-s", help="override a key")] = [],
    jobs: Annotated[int, typer.Option(help="worker processes")] = 1,
    out_dir: Annotated[Optional[Path], typer.Option("--out", "-o", help="directory (new or empty)")] = None,
    data: DataOption = None,
    target: TargetOption = None,
) -> None:
    """Train an ensemble; its directory loads and evaluates like a single run."""
    from trainwell.config import load_config
    from trainwell.selection import balance_cascade, boost, train_ensemble

    cfg = load_config(config, [*set_, *_data_overrides(data, target)])
    if method == "members":
        result = train_ensemble(cfg, members=members, vary=vary, combine=combine, bagging=bagging, balance=balance,
                                jobs=jobs, out=out_dir)
    elif method in ("cascade", "boost"):
        result = (balance_cascade if method == "cascade" else boost)(cfg, rounds=members, out=out_dir)
        combine = result["combine"]
    else:
        raise TrainwellError(f"--method takes members, cascade or boost, got {method!r}")
    for i, m in enumerate(result["members"]):
        out.print(f"member {i} ({' '.join(m['changes'])}): test accuracy {m['test_accuracy']:.4f}")
    mean = sum(m["test_accuracy"] for m in result["members"]) / len(result["members"])
    if result.get("stopped_early"):
        out.print(result["stopped_early"], markup=False)
    out.print(f"ensemble ({combine}): test accuracy {result['test']['accuracy']:.4f} "
              f"(mean member {mean:.4f})")
    out.print(f"directory: {result['dir']}")


@app.command("one-class")
def one_class(
    config: Annotated[Optional[Path], typer.Argument(help="YAML config (its one_class and data sections)")] = None,
    set_: Annotated[list[str], typer.Option("--set", "-s", help="override a key: --set one_class.epochs=50")] = [],
    out_dir: Annotated[Optional[Path], typer.Option("--out", "-o", help="run directory (new or empty)")] = None,
) -> None:
    """One-class learning: an autoencoder learns the normal class alone and flags every other row."""
    from trainwell.config import load_config
    from trainwell.runs import train_one_class

    result = train_one_class(load_config(config, set_), out=out_dir)
    test = result["test"]
    recall = test["per_class_recall"]
    out.print(f"normal class: {result['normal_class']}   test: balanced accuracy {test['balanced_accuracy']:.4f}, "
              f"outliers found {'-' if recall[1] is None else f'{recall[1]:.2f}'}, "
              f"normal rows kept {'-' if recall[0] is None else f'{recall[0]:.2f}'}", markup=False)
    out.print(f"run directory: {result['dir']}")


def _version(value: bool) -> None:
    if value:  # the package's __version__ (its __init__ ran before this module: no import of the top needed)
        out.print(f"trainwell {sys.modules['trainwell'].__version__}", markup=False, highlight=False)
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="print the version and exit")] = False,
) -> None:
    """Train neural networks so that training goes right."""


def main() -> None:
    """Entry point: run the app, turning user errors into one line and exit code 2."""
    from trainwell.loop.distributed import exit_alone
    from trainwell.runs import Interrupted

    try:
        app()
    except TrainwellError as e:  # one line (from rank 0 alone in a data-parallel run)
        exit_alone(2, f"error: {e}")
    except Interrupted as e:
        err.print(str(e), markup=False)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        exit_alone(130, "interrupted at once (second signal); the last checkpoint is intact")


if __name__ == "__main__":
    main()
