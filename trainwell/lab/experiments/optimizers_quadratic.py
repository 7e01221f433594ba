"""Nine optimizers on a rotated ill-conditioned quadratic and on Rosenbrock; Newton solves the quadratic in one step."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from trainwell.lab.base import Experiment, judge
from trainwell.lab.plotting import bars, figure, save
from trainwell.optim import OPTIMIZERS

GRID = {"sgd": (0.001, 0.005, 0.019), "momentum": (0.0003, 0.001, 0.004), "nesterov": (0.0003, 0.001, 0.004),
        "adagrad": (0.1, 0.5, 1.0), "rmsprop": (0.001, 0.01, 0.05), "adadelta": (1.0, 5.0, 20.0),
        "adam": (0.01, 0.05, 0.2), "newton": (1.0,), "lbfgs": (1.0,)}


@dataclass(frozen=True)
class Settings:
    condition: float = 100.0      # L / mu of the quadratic
    angle: float = 0.7854         # its axes rotated by 45 degrees
    tolerance: float = 1e-6       # f(x) - f* below this counts as solved
    max_steps: int = 3000
    on: tuple[str, ...] = ("quadratic", "rosenbrock")
    seeds: int = 1


def problems(cfg: Settings):
    c, s = math.cos(cfg.angle), math.sin(cfg.angle)
    rot = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    hessian = rot @ torch.diag(torch.tensor([1.0, cfg.condition], dtype=torch.float64)) @ rot.T
    quadratic = lambda x: 0.5 * x @ hessian @ x  # noqa: E731  minimum 0 at 0
    rosenbrock = lambda x: (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2  # noqa: E731  minimum 0 at (1, 1)
    return {"quadratic": (quadratic, [1.0, 1.5]), "rosenbrock": (rosenbrock, [-1.2, 1.0])}


def steps_to_tolerance(name: str, f, start, lr: float, cfg: Settings, **extra) -> int | None:
    x = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    kwargs = {"max_iter": 1} if name == "lbfgs" else {"damping": 0.0} if name == "newton" else {}
    opt = OPTIMIZERS.get(name)([x], lr=lr, **kwargs, **extra)
    second = getattr(opt, "create_graph", False)

    def closure():
        opt.zero_grad()
        loss = f(x)
        with warnings.catch_warnings():  # Newton's double backward: the optimizer breaks the cycle itself
            warnings.simplefilter("ignore", UserWarning)
            loss.backward(create_graph=second)
        return loss

    for t in range(1, cfg.max_steps + 1):
        opt.step(closure)
        with torch.no_grad():
            value = f(x).item()
        if not math.isfinite(value):
            return None
        if value < cfg.tolerance:
            return t
    return None


def run(cfg: Settings, seeds: list[int]) -> dict:
    steps, best_lr = {}, {}
    for problem, (f, start) in problems(cfg).items():
        if problem not in cfg.on:
            continue
        steps[problem], best_lr[problem] = {}, {}
        for name, grid in GRID.items():
            found = [(steps_to_tolerance(name, f, start, lr, cfg), lr) for lr in grid]
            solved = [(s, lr) for s, lr in found if s is not None]
            steps[problem][name], best_lr[problem][name] = min(solved) if solved else (None, None)
    mu, big_l = 1.0, cfg.condition
    f0 = problems(cfg)["quadratic"][0](torch.tensor([1.0, 1.5], dtype=torch.float64)).item()
    # GD at lr 2/(L+mu): the error contracts by (k-1)/(k+1) per step, f by its square
    rate_gd = (cfg.condition - 1) / (cfg.condition + 1)
    # heavy ball at lr 4/(sqrt L + sqrt mu)^2, momentum ((sqrt k - 1)/(sqrt k + 1))^2: rate (sqrt k - 1)/(sqrt k + 1)
    rk = math.sqrt(cfg.condition)
    rate_hb = (rk - 1) / (rk + 1)
    theory = {"sgd": math.ceil(math.log(f0 / cfg.tolerance) / (-2 * math.log(rate_gd))),
              "momentum": math.ceil(math.log(f0 / cfg.tolerance) / (-2 * math.log(rate_hb)))}
    f = problems(cfg)["quadratic"][0]
    at_optimum = {"sgd": steps_to_tolerance("sgd", f, [1.0, 1.5], 2 / (big_l + mu), cfg),
                  "momentum": steps_to_tolerance("momentum", f, [1.0, 1.5], 4 / (math.sqrt(big_l) + 1) ** 2, cfg,
                                                 momentum=rate_hb ** 2)}
    return {"steps_to_tolerance": steps, "best_lr": best_lr, "theory_steps": theory,
            "steps_at_theory_settings": at_optimum}


def verdict(m: dict, cfg: Settings) -> tuple[str, str]:
    q, th, at = m["steps_to_tolerance"]["quadratic"], m["theory_steps"], m["steps_at_theory_settings"]
    gd_ok = at["sgd"] is not None and 0.8 * th["sgd"] <= at["sgd"] <= 1.25 * th["sgd"]
    hb_ok = at["momentum"] is not None and at["momentum"] <= 2 * th["momentum"]
    return judge([(f"Newton solves the quadratic in one step (took {q['newton']})", q["newton"] == 1),
                  (f"GD at lr 2/(L+mu) takes {at['sgd']} steps, within 0.8-1.25 x theory {th['sgd']}", gd_ok),
                  (f"heavy-ball momentum at its optimal settings takes {at['momentum']} steps, <= 2 x theory "
                   f"{th['momentum']}", hb_ok)],
                 refute=[(f"Newton needs {q['newton']} steps on a quadratic", q["newton"] not in (None, 1))])


def plot(result: dict, directory: Path) -> list[str]:
    m = result["measurements"]
    fig, axes = figure(2)
    cap = result["config"]["max_steps"]
    for ax, (problem, steps) in zip(axes[0], m["steps_to_tolerance"].items()):
        bars(ax, {k: (v if v is not None else cap) for k, v in steps.items()}, log=True,
             ylabel=f"steps to f - f* < {result['config']['tolerance']:g} (cap {cap})", title=problem)
    return [save(fig, directory, "optimizers.png")]


def summary(m: dict) -> str:
    q = m["steps_to_tolerance"]["quadratic"]
    return ("quadratic steps: " + ", ".join(f"{k} {v}" for k, v in q.items())
            + f"; theory GD {m['theory_steps']['sgd']}, momentum {m['theory_steps']['momentum']}")


EXPERIMENT = Experiment(
    name="optimizers_quadratic",
    claim="GD, momentum, Nesterov, AdaGrad, RMSProp, Adadelta, Adam, Newton and L-BFGS on a rotated ill-conditioned "
          "quadratic and on Rosenbrock (--quick: the quadratic only); Newton solves a quadratic in one step",
    source="notes on optimisation: gradient descent, momentum and second-order methods (seed 001, 002); "
           "Polyak 1964; Nocedal & Wright 2006",
    setup="trainwell.optim's optimizers (registry names) on f = x^T A x / 2 with A's eigenvalues 1 and 100 rotated "
          "45 degrees, from (1, 1.5), and on Rosenbrock from (-1.2, 1); each at the best of a fixed 3-rate grid; "
          "GD and heavy-ball momentum also at their theoretically optimal settings",
    criterion="confirmed if Newton (damping 0, lr 1) reaches f - f* < 1e-6 on the quadratic in exactly one step, GD "
              "at lr 2/(L+mu) needs 0.8-1.25 x the theoretical ln(f0/tol) / (2 ln((k+1)/(k-1))) steps, and "
              "heavy-ball momentum at its optimal settings at most 2 x its theoretical count with rate "
              "(sqrt k - 1)/(sqrt k + 1); refuted if Newton needs more than one step",
    config=Settings(), quick=Settings(max_steps=500, on=("quadratic",)),
    run=run, verdict=verdict, plot=plot, summary=summary, keys=("steps_to_tolerance", "theory_steps"))
