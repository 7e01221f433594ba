"""Adam's bias correction 1/(1 - beta^t): without it the first steps are too large; the notes' 1/(1 - beta) only
rescales the rate."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from trainwell.config import ModelConfig
from trainwell.data import load_data
from trainwell.lab.base import Experiment, judge
from trainwell.lab.common import mean
from trainwell.lab.plotting import curves, figure, save
from trainwell.loop import Callback, Trainer
from trainwell.losses import make_loss
from trainwell.models import build_model
from trainwell.optim import adam, chain
from trainwell.optim.penalties import add_l2
from trainwell.optim.transforms import ScaleByAdam

VARIANTS = ("corrected", "uncorrected", "notes")


class NotesScaleByAdam(ScaleByAdam):
    """The notes' version: ``m / (1 - b1)`` and ``v / (1 - b2)``, constants instead of ``1 - beta^t``."""

    def _corrections(self, states, group):
        b1, b2 = group["betas"]
        return [1 - b1] * len(states), [math.sqrt(1 - b2)] * len(states)


def optimizer(variant: str, params, lr: float, betas: tuple[float, float]) -> torch.optim.Optimizer:
    if variant == "notes":
        return chain(params, add_l2(), NotesScaleByAdam(), lr=lr, betas=betas, eps=1e-8, weight_decay=0.0,
                     amsgrad=False, maximize=False)
    return adam(params, lr=lr, betas=betas, bias_correction=variant == "corrected")


@dataclass(frozen=True)
class Settings:
    beta1: float = 0.9
    beta2: float = 0.999
    steps: int = 1000          # of the constant-gradient probe
    lr: float = 0.01           # of the network
    epochs: int = 5
    n_samples: int = 2000
    early: int = 50            # the peak loss is the highest of the first N updates
    seeds: int = 2


class Losses(Callback):
    def __init__(self) -> None:
        self.values: list[float] = []

    def on_batch_end(self, trainer) -> None:
        self.values.append(trainer.loss.item())


def run(cfg: Settings, seeds: list[int]) -> dict:
    betas = (cfg.beta1, cfg.beta2)
    step_over_lr = {}
    for variant in VARIANTS:  # one parameter, constant gradient 1: the step size in units of lr
        p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        opt, sizes = optimizer(variant, [p], 1.0, betas), []
        for _ in range(cfg.steps):
            before = p.detach().clone()
            opt.zero_grad()
            p.sum().backward()
            opt.step()
            sizes.append((before - p.detach()).abs().item())
        step_over_lr[variant] = sizes
    data = load_data("mnist1d", n_samples=cfg.n_samples, seed=0)
    loss_fn = make_loss("cross_entropy", data.n_classes)
    curves_, peak, final = {v: [] for v in VARIANTS}, {v: [] for v in VARIANTS}, {v: [] for v in VARIANTS}
    for variant in VARIANTS:
        for seed in seeds:
            torch.manual_seed(seed)
            model = build_model(ModelConfig(depth=2, width=64, dropout=0.0), data.input_shape, data.n_classes,
                                data.kind, data.mean, data.std)
            losses = Losses()
            Trainer(model, optimizer(variant, model.parameters(), cfg.lr, betas), loss_fn, data.train, data.val,
                    epochs=cfg.epochs, batch_size=64, callbacks=[losses],
                    generator=torch.Generator().manual_seed(seed)).fit()
            curves_[variant].append(losses.values)
            peak[variant].append(max(losses.values[1:cfg.early]))
            final[variant].append(mean(losses.values[-10:]))
    return {"step_over_lr": step_over_lr, "peak_loss": peak, "final_loss": final, "loss_curve": curves_,
            "notes_over_uncorrected_theory": math.sqrt(1 - cfg.beta2) / (1 - cfg.beta1)}


def verdict(m: dict, cfg: Settings) -> tuple[str, str]:
    s = m["step_over_lr"]
    corrected_dev = max(abs(v - 1) for v in s["corrected"])
    early_max = max(s["uncorrected"][:100])
    ratios = [n / u for n, u in zip(s["notes"], s["uncorrected"])]
    theory = m["notes_over_uncorrected_theory"]
    ratio_dev = max(abs(r - theory) for r in ratios)
    pk = m["peak_loss"]
    return judge([(f"corrected: every step is lr within 1% (max deviation {corrected_dev:.2e})", corrected_dev < 0.01),
                  (f"uncorrected: early steps > 2 lr (max of the first 100: {early_max:.2f} lr)", early_max > 2),
                  (f"notes' 1/(1-beta): steps = uncorrected x sqrt(1-b2)/(1-b1) = {theory:.4f} at every t "
                   f"(max deviation {ratio_dev:.1e})", ratio_dev < 1e-6),
                  (f"uncorrected peak loss of the first {cfg.early} updates > corrected's for every seed "
                   f"({pk['uncorrected']} vs {pk['corrected']})",
                   all(u > c for u, c in zip(pk["uncorrected"], pk["corrected"])))],
                 refute=[(f"uncorrected early steps are not larger than lr (max {early_max:.2f})", early_max <= 1)])


def plot(result: dict, directory: Path) -> list[str]:
    m = result["measurements"]
    fig, axes = figure(2)
    n = len(m["step_over_lr"]["corrected"])
    curves(axes[0][0], m["step_over_lr"], x=list(range(1, n + 1)), xlabel="step t", ylabel="|step| / lr",
           title="constant gradient", log=True)
    axes[0][0].set_xscale("log")
    curves(axes[0][1], {v: c[0] for v, c in m["loss_curve"].items()}, xlabel="update", ylabel="training loss",
           title=f"MLP on MNIST-1D, lr {result['config']['lr']}, beta2 {result['config']['beta2']}")
    return [save(fig, directory, "adam_steps.png")]


def summary(m: dict) -> str:
    s = m["step_over_lr"]
    return (f"max early step/lr: uncorrected {max(s['uncorrected'][:100]):.2f}, corrected {max(s['corrected']):.2f}, "
            f"notes {max(s['notes'][:100]):.2f}; peak loss " +
            ", ".join(f"{v} {mean(m['peak_loss'][v]):.2f}" for v in VARIANTS))


EXPERIMENT = Experiment(
    name="adam_bias_correction",
    claim="without 1/(1-beta^t) Adam's first steps are too large when beta2 is near 1; the notes' 1/(1-beta) "
          "is only a constant rescale of the rate",
    source="notes on Adam (seed 001: the notes' 1/(1-beta) is wrong); Kingma & Ba 2015, section 3",
    setup="trainwell.optim.adam with and without bias correction, and the notes' constant correction (a "
          "ScaleByAdam with 1-beta for 1-beta^t); step sizes on a constant gradient over 1000 steps; an MLP 2 x 64 "
          "on MNIST-1D trained by trainwell.loop.Trainer with lr 0.01, betas (0.9, 0.999)",
    criterion="confirmed if the corrected step is lr within 1% at every step, the uncorrected one exceeds 2 lr "
              "in the first 100 steps, the notes' steps equal the uncorrected ones times sqrt(1-b2)/(1-b1) (to "
              "1e-6) at every step, and the uncorrected run's peak loss in its first 50 updates exceeds the "
              "corrected run's for every seed; refuted if the uncorrected early steps are never above lr",
    config=Settings(), quick=Settings(steps=300, epochs=2, n_samples=1000, seeds=1),
    run=run, verdict=verdict, plot=plot, summary=summary, keys=("step_over_lr", "peak_loss", "final_loss"))
