"""Cross-entropy keeps learning from a saturated wrong sigmoid output; MSE on the sigmoid barely does."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from trainwell.lab.base import Experiment, judge
from trainwell.lab.common import base_config, mean, quiet_train
from trainwell.lab.plotting import bars, curves, figure, save
from trainwell.losses import make_loss

LOSSES = {"bce": ("bce", {}), "mse_sigmoid": ("mse", {"output": "sigmoid"})}
INITS = {"default": ("default", {}), "normal_std1": ("normal", {"std": 1.0})}


@dataclass(frozen=True)
class Settings:
    epochs: int = 20
    lr: float = 0.05
    width: int = 64
    seeds: int = 2


def gradients() -> dict:
    """dL/dz of the true class's logit z (the other logit at 0), for z from -10 (saturated, wrong) to 10."""
    zs = torch.linspace(-10, 10, 81, dtype=torch.float64)
    out = {"z": zs.tolist()}
    for key, (name, options) in LOSSES.items():
        loss_fn = make_loss(name, 2, **options)
        grads = []
        for z in zs:
            logits = torch.stack([z, torch.zeros((), dtype=torch.float64)]).reshape(1, 2).requires_grad_()
            (g,) = torch.autograd.grad(loss_fn(logits, torch.tensor([0])), logits)
            grads.append(g[0, 0].item())
        out[key] = grads
    return out


def config(cfg: Settings, loss: str, init: str, seed: int) -> dict:
    name, options = LOSSES[loss]
    scheme, init_options = INITS[init]
    return base_config(seed=seed, data={"name": "digits", "batch_size": 64}, loss=name, loss_options=options,
                       model={"depth": 1, "width": cfg.width, "init": scheme, "init_options": init_options},
                       optim={"name": "momentum", "lr": cfg.lr}, train={"epochs": cfg.epochs})


def run(cfg: Settings, seeds: list[int]) -> dict:
    accuracy = {loss: {init: [] for init in INITS} for loss in LOSSES}
    for loss in LOSSES:
        for init in INITS:
            for seed in seeds:
                r = quiet_train(config(cfg, loss, init, seed))
                accuracy[loss][init].append(r.metrics["test"]["accuracy"])
    return {"dl_dz": gradients(), "accuracy": accuracy}


def verdict(m: dict, cfg: Settings) -> tuple[str, str]:
    g = m["dl_dz"]
    ce_ratio = abs(g["bce"][0]) / max(abs(v) for v in g["bce"])
    mse_ratio = abs(g["mse_sigmoid"][0]) / max(abs(v) for v in g["mse_sigmoid"])
    a = m["accuracy"]
    gaps = [c - s for c, s in zip(a["bce"]["normal_std1"], a["mse_sigmoid"]["normal_std1"])]
    return judge([(f"at z = -10 CE's |dL/dz| is {ce_ratio:.2f} of its maximum (>= 0.5)", ce_ratio >= 0.5),
                  (f"at z = -10 MSE's |dL/dz| is {mse_ratio:.1e} of its maximum (<= 0.01)", mse_ratio <= 0.01),
                  (f"from a saturating init (normal std 1) CE's test accuracy beats MSE's by >= 0.05 for every seed "
                   f"(gaps {[round(x, 3) for x in gaps]})", all(x >= 0.05 for x in gaps))],
                 refute=[("MSE's gradient at the saturated wrong output is as large as CE's", mse_ratio >= ce_ratio)])


def plot(result: dict, directory: Path) -> list[str]:
    m = result["measurements"]
    fig, axes = figure(2)
    g = dict(m["dl_dz"])
    zs = g.pop("z")
    curves(axes[0][0], {k: [abs(v) for v in vs] for k, vs in g.items()}, x=zs, log=True,
           xlabel="logit z of the true class", ylabel="|dL/dz|", title="gradient at the output")
    bars(axes[0][1], {f"{loss}\n{init}": mean(v) for loss, by in m["accuracy"].items() for init, v in by.items()},
         ylabel="test accuracy", title="digits, MLP 1 x 64")
    return [save(fig, directory, "ce_vs_mse.png")]


def summary(m: dict) -> str:
    g = m["dl_dz"]
    return (f"dL/dz at z=-10: bce {g['bce'][0]:.3f}, mse {g['mse_sigmoid'][0]:.1e}; test acc (std-1 init) "
            f"bce {mean(m['accuracy']['bce']['normal_std1']):.3f}, "
            f"mse {mean(m['accuracy']['mse_sigmoid']['normal_std1']):.3f}")


EXPERIMENT = Experiment(
    name="ce_vs_mse",
    claim="cross-entropy learns from saturated wrong outputs; MSE on a sigmoid output does not",
    source="notes on loss functions: cross-entropy versus squared error (seed 001); Golik et al. 2013",
    setup="trainwell.losses bce and mse (output=sigmoid): dL/dz of the true class's logit for z in [-10, 10]; "
          "trainwell.train of an MLP 1 x 64 on digits with SGD momentum lr 0.05, from PyTorch's init and from "
          "normal(std 1) (saturated outputs)",
    criterion="confirmed if at z = -10 CE's |dL/dz| is at least half its maximum while MSE's is at most 1% of "
              "its maximum, and from the std-1 init CE's test accuracy beats MSE's by >= 0.05 for every seed; "
              "refuted if MSE's relative gradient at z = -10 is as large as CE's",
    config=Settings(), quick=Settings(epochs=5, seeds=1),
    run=run, verdict=verdict, plot=plot, summary=summary, keys=("dl_dz", "accuracy"))
