"""Four causes of a NaN loss, reproduced, and each named by the doctor."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from trainwell.config import ModelConfig
from trainwell.data import Split, load_data
from trainwell.doctor import audit
from trainwell.lab.base import Experiment, judge
from trainwell.lab.common import base_config, quiet_train
from trainwell.lab.plotting import bars, figure, save
from trainwell.loop import CancelFit, Callback, Trainer
from trainwell.losses import make_loss
from trainwell.models import build_model
from trainwell.optim import sgd

CASES = {  # cause -> the config that shows it (digits; the doctor watches)
    "learning_rate_too_high": {"model": {"depth": 2, "width": 64}, "optim": {"name": "sgd", "lr": 50.0}},
    "exploding_gradients": {"model": {"depth": 10, "width": 64, "init": "normal", "init_options": {"std": 1.0}},
                            "optim": {"name": "sgd", "lr": 0.1}},
    "log_of_zero": {"model": {"depth": 2, "width": 64}, "optim": {"name": "sgd", "lr": 10.0},
                    "loss": "naive_cross_entropy"},
}


@dataclass(frozen=True)
class Settings:
    epochs: int = 5
    poisoned_rows: int = 5
    seeds: int = 1


class FirstNaN(Callback):
    def __init__(self) -> None:
        self.step: int | None = None

    def on_batch_end(self, trainer) -> None:
        if self.step is None and not math.isfinite(trainer.loss.item()):
            self.step = trainer.step
            raise CancelFit


def config(cfg: Settings, cause: str, seed: int) -> dict:
    case = CASES[cause]
    return base_config(seed=seed, data={"name": "digits", "batch_size": 64}, doctor={"enabled": True},
                       model=case["model"], optim=case["optim"], loss=case.get("loss", "cross_entropy"),
                       train={"epochs": cfg.epochs})


def bad_input(cfg: Settings, seed: int) -> tuple[int | None, str | None]:
    """NaN features in a few training rows: the loss of the first batch holding one is NaN; the audit names it.
    (trainwell.train itself refuses such data, or drops the rows with doctor.repair.)"""
    data = load_data("digits")
    x = data.train.x.clone()
    x[:cfg.poisoned_rows, 0] = float("nan")
    train = Split(x, data.train.y)
    torch.manual_seed(seed)
    model = build_model(ModelConfig(depth=2, width=64, dropout=0.0), data.input_shape, data.n_classes)
    first = FirstNaN()
    Trainer(model, sgd(model.parameters(), lr=0.1), make_loss("cross_entropy", data.n_classes), train,
            epochs=cfg.epochs, batch_size=64, callbacks=[first], generator=torch.Generator().manual_seed(seed)).fit()
    found = [f for f in audit(train, n_classes=data.n_classes) if f.symptom == "bad_input"]
    return first.step, found[0].cause if found else None


def run(cfg: Settings, seeds: list[int]) -> dict:
    steps, cause_named, symptoms = {}, {}, {}
    seed = seeds[0]
    for cause in CASES:
        r = quiet_train(config(cfg, cause, seed))
        nan = [f for f in r.findings if f.symptom == "nan_loss"]
        steps[cause] = nan[0].step + 1 if nan else None
        cause_named[cause] = nan[0].cause if nan else None
        symptoms[cause] = sorted({f.symptom for f in r.findings if f.severity != "info"})
    steps["bad_input"], cause_named["bad_input"] = bad_input(cfg, seed)
    symptoms["bad_input"] = ["bad_input"] if cause_named["bad_input"] else []
    return {"steps_to_nan": steps, "doctor_cause": cause_named, "symptoms": symptoms,
            "configs": {c: config(cfg, c, seed) for c in CASES}}


def verdict(m: dict, cfg: Settings) -> tuple[str, str]:
    s, c = m["steps_to_nan"], m["doctor_cause"]
    return judge([(f"each case reaches a NaN loss ({s})", all(v is not None for v in s.values())),
                  (f"the doctor names each cause ({c})", all(c[k] == k for k in s))])


def plot(result: dict, directory: Path) -> list[str]:
    m = result["measurements"]
    fig, axes = figure(1, width=6)
    bars(axes[0][0], {f"{k}\n(doctor: {m['doctor_cause'][k]})": v for k, v in m["steps_to_nan"].items()},
         ylabel="updates until the loss is NaN", title="four causes of NaN")
    return [save(fig, directory, "nan_causes.png")]


def summary(m: dict) -> str:
    return ", ".join(f"{k}: NaN at {m['steps_to_nan'][k]}, doctor says {m['doctor_cause'][k]}"
                     for k in m["steps_to_nan"])


EXPERIMENT = Experiment(
    name="nan_causes",
    claim="a NaN loss has four usual causes - a rate far too high, exploding gradients, log(0), bad input - and "
          "each can be told apart",
    source="notes on debugging training: NaN losses (seed 000)",
    setup="digits: trainwell.train with the doctor of MLPs with SGD lr 50, 10 layers from normal(std 1), and the "
          "naive -log(softmax) at lr 10; and a trainwell.loop.Trainer run on training rows with NaN features, "
          "named by trainwell.doctor.audit",
    criterion="confirmed if each of the four cases reaches a NaN loss and the doctor's finding names its cause "
              "(learning_rate_too_high, exploding_gradients, log_of_zero, bad_input); otherwise inconclusive",
    config=Settings(), quick=Settings(epochs=3),
    run=run, verdict=verdict, plot=plot, summary=summary, keys=("steps_to_nan", "doctor_cause"))
