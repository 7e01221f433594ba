"""Inverted and classic dropout have the same expected output; scaling by p instead of 1 - p is wrong."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from trainwell.lab.base import Experiment, judge
from trainwell.lab.common import base_config, quiet_train
from trainwell.lab.plotting import bars, curves, figure, save
from trainwell.nn.dropout import ClassicDropout, make_dropout

SCHEMES = ("inverted", "classic", "scale_by_p")


@dataclass(frozen=True)
class Settings:
    ps: tuple[float, ...] = (0.1, 0.2, 0.5, 0.8)
    units: int = 256
    masks: int = 20000
    epochs: int = 15
    n_samples: int = 2000
    seeds: int = 1


def expectations(p: float, x: torch.Tensor, masks: int) -> dict[str, float]:
    """Relative error ||E[train output] - eval output|| / ||eval output|| of each scheme, by Monte Carlo."""
    out = {}
    for scheme in SCHEMES:
        layer = make_dropout("inverted" if scheme == "inverted" else "classic", p)
        batch = x.expand(masks, -1)                                # (masks, units): one mask per row
        train_mean = layer.train()(batch).mean(0)
        # the notes' version: kept units as they are in training, every unit times p at evaluation
        evaluated = x * p if scheme == "scale_by_p" else layer.eval()(x)
        out[scheme] = ((train_mean - evaluated).norm() / evaluated.norm()).item()
    return out


def test_accuracy(cfg: Settings, seed: int) -> dict[str, float]:
    """A net trained with classic dropout (p = 0.5 is where p and 1 - p agree; 0.2 here), evaluated both ways."""
    run = quiet_train(base_config(seed=seed, data={"name": "mnist1d", "n_samples": cfg.n_samples},
                                  model={"depth": 2, "width": 128, "dropout": 0.2, "dropout_mode": "classic"},
                                  train={"epochs": cfg.epochs}))
    test = run.data.test
    accuracy = {}
    layers = [m for m in run.model.modules() if isinstance(m, ClassicDropout)]
    for scheme in ("classic", "scale_by_p"):
        for m in layers:  # eval multiplies by 1 - m.p: setting m.p to 1 - p makes it multiply by p
            m.p = 0.2 if scheme == "classic" else 0.8
        with torch.no_grad():
            accuracy[scheme] = (run.model.eval()(test.x).argmax(1) == test.y).float().mean().item()
    return accuracy


def run(cfg: Settings, seeds: list[int]) -> dict:
    gen = torch.Generator().manual_seed(seeds[0])
    torch.manual_seed(seeds[0])
    x = torch.rand(cfg.units, generator=gen) + 0.5                # positive activations, as after a ReLU
    errors = {str(p): expectations(p, x, cfg.masks) for p in cfg.ps}
    return {"relative_error": {s: {p: e[s] for p, e in errors.items()} for s in SCHEMES},
            "test_accuracy": [test_accuracy(cfg, s) for s in seeds]}


def verdict(m: dict, cfg: Settings) -> tuple[str, str]:
    e = m["relative_error"]
    good = max(max(e["inverted"].values()), max(e["classic"].values()))
    wrong = [v for p, v in e["scale_by_p"].items() if float(p) != 0.5]
    return judge([(f"inverted and classic: relative error <= 0.03 at every p (max {good:.4f})", good <= 0.03),
                  (f"scale by p: relative error > 0.2 at every p != 0.5 (min {min(wrong):.3f})", min(wrong) > 0.2)],
                 refute=[(f"inverted or classic dropout changes the expected output (error {good:.3f} > 0.1)",
                          good > 0.1)])


def plot(result: dict, directory: Path) -> list[str]:
    m = result["measurements"]
    fig, axes = figure(2)
    ps = [float(p) for p in m["relative_error"]["inverted"]]
    curves(axes[0][0], {s: list(v.values()) for s, v in m["relative_error"].items()}, x=ps, xlabel="drop probability p",
           ylabel="|E[train] - eval| / |eval|", title="expected output, train vs eval")
    bars(axes[0][1], m["test_accuracy"][0], ylabel="test accuracy", title="a net trained with p = 0.2")
    return [save(fig, directory, "dropout_scaling.png")]


def summary(m: dict) -> str:
    e = m["relative_error"]
    return (f"rel. error at p=0.2: inverted {e['inverted']['0.2']:.4f}, classic {e['classic']['0.2']:.4f}, "
            f"by p {e['scale_by_p']['0.2']:.3f}; test acc classic {m['test_accuracy'][0]['classic']:.3f} vs "
            f"by p {m['test_accuracy'][0]['scale_by_p']:.3f}")


EXPERIMENT = Experiment(
    name="dropout_scaling",
    claim="inverted (x/(1-p) in training) and classic ((1-p) x at evaluation) dropout keep the expected output; "
          "scaling by p, as the notes write, does not",
    source="notes on dropout (seed 000, 001: the notes' scaling by p is wrong); Srivastava et al. 2014",
    setup="trainwell.nn.dropout layers on 256 positive activations, expectation over 20000 masks per p; and an "
          "MLP 2 x 128 trained with classic dropout p = 0.2 on MNIST-1D, evaluated with 1-p and with p",
    criterion="confirmed if inverted and classic dropout have relative error <= 0.03 between the mean training "
              "output and the evaluation output at every p, and scaling by p has relative error > 0.2 at every "
              "p != 0.5; refuted if inverted or classic exceed 0.1",
    config=Settings(), quick=Settings(masks=5000, epochs=5, n_samples=1000),
    run=run, verdict=verdict, plot=plot, summary=summary, keys=("relative_error",))
