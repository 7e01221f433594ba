"""Probes: what the doctor measures, through hooks that are always removed.

* :class:`ActivationProbe`: forward hooks on activation modules. On sampled
  steps each records, detached, the share of saturated units, the share of
  units active on some row of the batch (OR-ed over the batches of a window:
  a unit is dead when it is 0 for every row of the window, not of one
  batch, which may hold one class), and the spread (std) of its input, the
  pre-activation, and after backward the RMS of the gradient reaching its
  output (the state gradient). Units are features (fully connected) or channels (conv).
* :func:`layer_gradients`: per weighted layer, the RMS of its weight gradient and weights.
* :class:`TimeProbe`: on sampled steps, the RMS of the loss's gradient with
  respect to the first and the last time step's input of every recurrent
  layer (``nn.RNN``, ``nn.GRU``, ``nn.LSTM``): the gradient through time,
  whose factors are the recurrent weight matrix once per step (seed 000).
* :class:`UpdateProbe`: ``|dw| / |w_before|`` per weighted layer, through the
  optimizer's step hooks, without the part of ``dw`` that shrinks ``w`` along
  itself (weight decay): the gradient's share of the update.
* :class:`Guarded`: every hook a probe puts into the user's model or
  optimizer is wrapped so that it never raises: an error inside one is kept
  (``failed``), the probe does nothing from then on, and the doctor says so.
* :func:`first_non_finite`: re-runs a forward pass with hooks on every module
  and names the first one whose output is non-finite although its inputs
  are finite (the origin), apart from those that only passed it on.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from trainwell.nn.activations import ACTIVATIONS, make_activation

__all__ = ["ActivationProbe", "TimeProbe", "UpdateProbe", "activation_name", "first_non_finite", "layer_gradients",
           "standardized_profile", "weighted_layers"]


def _activation_classes() -> dict[type, str]:
    classes = {}
    for entry in ACTIVATIONS:
        if entry.name == "identity":
            continue
        classes.setdefault(type(make_activation(entry.name)), entry.name)
    return classes


_ACTIVATION_CLASSES = _activation_classes()


def activation_name(module: nn.Module) -> str | None:
    """The registry name of an activation module (None for other modules)."""
    return _ACTIVATION_CLASSES.get(type(module))


def weighted_layers(model: nn.Module) -> list[tuple[str, nn.Module, list[nn.Parameter]]]:
    """``(name, module, weights)`` of every module owning weight matrices (dim >= 2), in registration order."""
    layers = []
    for name, module in model.named_modules():
        own = [p for p in module.parameters(recurse=False) if p.dim() >= 2 and p.requires_grad]
        if own:  # weight norm keeps g and v in "<layer>.parametrizations.weight": report the layer
            layers.append((name.replace(".parametrizations.weight", "") or "model", module, own))
    return layers


def layer_gradients(layers: list[tuple[str, nn.Module, list[nn.Parameter]]]
                    ) -> list[tuple[float, float] | None]:
    """``(gradient RMS, weight RMS)`` of each layer's weight matrices (None where no gradient); one sync."""
    grads, weights, owners = [], [], []
    for i, (_, _, ws) in enumerate(layers):
        for w in ws:
            if w.grad is not None:
                grads.append(w.grad.detach())
                weights.append(w.detach())
                owners.append(i)
    if not grads:
        return [None] * len(layers)
    norms = torch.stack([n.float() for n in torch._foreach_norm(grads + weights)]).cpu().tolist()
    g2, w2, counts = [0.0] * len(layers), [0.0] * len(layers), [0] * len(layers)
    for k, (i, g) in enumerate(zip(owners, grads)):
        g2[i] += norms[k] ** 2
        w2[i] += norms[len(grads) + k] ** 2
        counts[i] += g.numel()
    return [(math.sqrt(g / c), math.sqrt(w / c)) if c else None for g, w, c in zip(g2, w2, counts)]


class Guarded:
    """A probe whose hooks never raise into the user's forward, backward or optimizer step."""

    failed: str | None = None  # the first error inside one of the probe's hooks

    def guard(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn``, doing nothing once any of the probe's hooks has failed; an error is kept, and None returned
        (a hook's "nothing changed")."""
        @functools.wraps(fn)
        def safe(*args: Any, **kwargs: Any) -> Any:
            if self.failed is not None:
                return None
            try:
                return fn(*args, **kwargs)
            except Exception as err:  # noqa: BLE001 - the user's training must go on
                self.failed = f"{type(err).__name__}: {err}"
                return None
        return safe


class ActivationProbe(Guarded):
    """Forward hooks on every activation module; they record only while ``active``.

    With ``detail`` (the doctor's ``record``) each record also holds the
    output's mean and std and the pre-activation's histogram (``hist``: ``bins``
    bins over ``span``, values outside counted in the end bins), each of at
    most ``hist_values`` values: those of the batch's first rows.
    """

    def __init__(self, model: nn.Module, detail: bool = False, bins: int = 40,
                 span: tuple[float, float] = (-4.0, 4.0), hist_values: int = 4096) -> None:
        self.active = True
        self.forced = False  # record a pass without gradients too (the doctor's standardised start)
        self.detail, self.bins, self.span, self.hist_values = detail, bins, span, hist_values
        self.modules = [(name, module, activation_name(module)) for name, module in model.named_modules()
                        if activation_name(module) is not None]
        self.records: dict[str, dict[str, torch.Tensor]] = {}
        self.skipped: set[str] = set()  # modules whose output could not be read
        # per unit: active on some row of the sampled batches since the last window was judged
        self.alive: dict[str, torch.Tensor] = {}
        self.alive_rows: dict[str, int] = {}
        self._handles = [m.register_forward_hook(self.guard(self._hook(name, kind)))
                         for name, m, kind in self.modules]

    def _hook(self, name: str, kind: str):
        meta = ACTIVATIONS.entry(kind).meta

        def hook(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
            # a pass without gradients (validation, the caller's own evaluation or plots) is not a training
            # batch: it must not fill the dead-unit window or replace the sample (the doctor's own
            # standardised pass says so with ``forced``)
            if not self.active or not (torch.is_grad_enabled() or self.forced):
                return
            if not isinstance(output, torch.Tensor) or not inputs or not isinstance(inputs[0], torch.Tensor):
                self.skipped.add(name)
                return
            with torch.no_grad():
                y = output.detach()
                units = y.movedim(1, -1).reshape(-1, y.shape[1]) if y.dim() > 1 else y.reshape(-1, 1)
                record = {"pre_std": inputs[0].detach().float().std() if inputs[0].numel() > 1
                          else torch.zeros(())}
                if meta["saturated"] is not None:
                    record["saturated"] = meta["saturated"](units).float().mean()
                if meta["dead"] is not None and units.shape[0] > 1:  # units active on some row of this batch
                    silent = meta["dead"](units).all(dim=0)  # per unit: 0 on every row of this batch
                    record["dead_batch"] = silent.float().mean()
                    self.alive[name] = ~silent | self.alive.get(name, False)
                    self.alive_rows[name] = self.alive_rows.get(name, 0) + units.shape[0]
                if self.detail:  # of the first rows' values: a picture, at a fifth of the cost of the batch's
                    lo, hi = self.span
                    x = inputs[0].detach().reshape(-1)[:self.hist_values].float()
                    out = y.reshape(-1)[:self.hist_values].float()
                    record.update(mean=out.mean(), std=out.std() if out.numel() > 1 else torch.zeros(()),
                                  hist=torch.histc(x.clamp(lo, hi), self.bins, lo, hi))
                self.records[name] = record
            if output.requires_grad:  # the back-propagated (state) gradient, RMS, when backward reaches it
                output.register_hook(self.guard(lambda g, r=record: r.__setitem__(
                    "state_grad", g.detach().float().pow(2).mean().sqrt())))

        return hook

    def collect(self, dead_rows: int | None = None) -> dict[str, dict[str, float]]:
        """The records of the last sampled forward pass, as numbers (one sync), then cleared.

        With ``dead_rows``, once the window holds that many rows, each layer's record also has ``dead``:
        the share of its units inactive on every row of the window (which then starts again).
        """
        names = list(self.records)
        flat = [(n, k, v) for n in names for k, v in self.records[n].items() if k != "hist"]
        hists = [(n, self.records[n]["hist"]) for n in names if "hist" in self.records[n]]
        self.records = {}
        if dead_rows is not None and self.alive and min(self.alive_rows.values()) >= dead_rows:
            flat += [(n, "dead", 1 - mask.float().mean()) for n, mask in self.alive.items()]
            names += [n for n in self.alive if n not in names]
            self.alive, self.alive_rows = {}, {}
        if not flat:
            return {}
        values = torch.stack([v.float().cpu() for _, _, v in flat]).tolist()
        out: dict[str, dict[str, Any]] = {n: {} for n in names}
        for (n, k, _), v in zip(flat, values):
            out[n][k] = v
        if hists:
            for (n, _), h in zip(hists, torch.stack([h.cpu() for _, h in hists]).round().int().tolist()):
                out[n]["hist"] = h
        return out

    def close(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


class TimeProbe(Guarded):
    """Forward pre-hooks on every one-directional ``nn.RNN``/``nn.GRU``/``nn.LSTM``; they record only while ``active``.

    A recorded layer's ``first`` and ``last`` are the RMS of the gradient
    reaching its input at the first and at the last time step. A model that
    reads the last state gets its loss's gradient at the last step directly
    and at the first only through every step's recurrent matrix: their ratio
    is the product of those factors, the RNN's gradient through time. Where
    the input needs no gradient (the data itself), a sampled step hands the
    layer a copy that does (same values; one more product per time step in
    the backward pass, every ``every`` steps).
    """

    def __init__(self, model: nn.Module) -> None:
        self.active = True
        self.modules = [(name, m) for name, m in model.named_modules()
                        if isinstance(m, nn.RNNBase) and not m.bidirectional]
        self.records: dict[str, dict[str, torch.Tensor]] = {}
        self.skipped: set[str] = set()  # layers whose input is not a (batch, time, features) tensor (packed, unbatched)
        self._handles = [m.register_forward_pre_hook(self.guard(self._hook(name))) for name, m in self.modules]

    def _hook(self, name: str):
        def hook(module: nn.RNNBase, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
            x = args[0] if args else None
            if not self.active or not torch.is_grad_enabled():
                return None
            if not isinstance(x, torch.Tensor) or x.dim() != 3 or not x.is_floating_point():
                self.skipped.add(name)
                return None
            time = 1 if module.batch_first else 0
            if x.shape[time] < 2:
                return None
            replaced = None
            if not x.requires_grad:
                x = x.detach().requires_grad_()
                replaced = (x, *args[1:])
            record: dict[str, torch.Tensor] = {}
            self.records[name] = record
            others = [d for d in range(3) if d != time]

            def grad_hook(g: torch.Tensor) -> None:
                per_step = g.detach().float().pow(2).mean(dim=others).sqrt()
                record.update(first=per_step[0], last=per_step[-1])

            x.register_hook(self.guard(grad_hook))
            return replaced

        return hook

    def collect(self) -> dict[str, tuple[float, float]]:
        """``(first, last)`` per layer whose backward pass was recorded (one sync), then cleared."""
        done = {n: r for n, r in self.records.items() if "first" in r}
        self.records = {}
        if not done:
            return {}
        values = torch.stack([torch.stack([r["first"], r["last"]]).cpu() for r in done.values()]).tolist()
        return {n: (a, b) for n, (a, b) in zip(done, values)}

    def close(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


class UpdateProbe(Guarded):
    """Relative size of each layer's update, ``|dw| / |w|``, on the steps it is armed for."""

    def __init__(self, optimizer: Any, layers: list[tuple[str, nn.Module, list[nn.Parameter]]]) -> None:
        self.layers = layers
        self.armed = False
        self.before: list[torch.Tensor] | None = None
        self.ratios: list[float] | None = None
        self._handles = []
        if hasattr(optimizer, "register_step_pre_hook") and hasattr(optimizer, "register_step_post_hook"):
            self._handles = [optimizer.register_step_pre_hook(self.guard(self._pre)),
                             optimizer.register_step_post_hook(self.guard(self._post))]

    @property
    def available(self) -> bool:
        return bool(self._handles)

    def _weights(self) -> list[torch.Tensor]:
        return [w for _, _, weights in self.layers for w in weights]

    def _pre(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if self.armed:
            self.before = [w.detach().clone() for w in self._weights()]

    def _post(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if not self.armed or self.before is None:
            return
        self.armed = False
        weights = self._weights()
        with torch.no_grad():
            deltas = torch._foreach_sub([w.detach() for w in weights], self.before)
            k = len(deltas)
            flat = torch.stack([n.float() for n in torch._foreach_norm(deltas)]
                               + [n.float() for n in torch._foreach_norm(self.before)]
                               + [p.sum().float() for p in torch._foreach_mul(deltas, self.before)]).cpu().tolist()
            num, den, dots = flat[:k], flat[k:2 * k], flat[2 * k:]  # one sync
        self.before = None
        per_layer, i = [], 0
        for _, _, ws in self.layers:
            # a shrinking update's component along -w is weight decay's (or the gradient's pull to 0), not a
            # step across the loss surface: only the rest counts (the gradient's share of the update)
            n2 = sum(num[i + j] ** 2 - ((dots[i + j] / den[i + j]) ** 2 if dots[i + j] < 0 and den[i + j] > 0 else 0.0)
                     for j in range(len(ws)))  # weights of exactly 0 (a zero start) have no direction to shrink along
            n2 = max(n2, 0.0)
            d2 = sum(den[i + j] ** 2 for j in range(len(ws)))
            per_layer.append(math.sqrt(n2) / math.sqrt(d2) if d2 > 0 else float("inf"))
            i += len(ws)
        self.ratios = per_layer

    def close(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


def standardized_profile(model: nn.Module, acts: ActivationProbe, inputs: torch.Tensor, targets: Any,
                         forward: Any = None) -> dict[str, float] | None:
    """Each activation's pre-activation spread on ``inputs`` standardised per feature (batch statistics).

    The initialisation check must not blame the weights for the input's own
    scale or offset: the same weights are judged on inputs of mean 0 and
    variance 1 (one extra forward pass, once; batch-norm buffers and the
    random state are restored).
    """
    if not inputs.is_floating_point() or inputs.dim() < 2 or len(inputs) < 2 or len(acts.modules) < 2:
        return None
    flat = inputs.detach().reshape(len(inputs), -1)
    x = ((flat - flat.mean(0)) / flat.std(0).clamp_min(1e-8)).reshape(inputs.shape)
    buffers = {k: v.clone() for k, v in model.state_dict().items() if "running_" in k or "num_batches" in k}
    devices = [inputs.device.index or 0] if inputs.device.type == "cuda" else []
    active, acts.active, acts.forced = acts.active, True, True
    alive, rows = acts.alive, acts.alive_rows  # the training batch's units stay counted, not this pass's
    acts.alive, acts.alive_rows = {}, {}
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            forward(model, x, targets) if forward is not None else model(x)
    finally:
        if buffers:
            model.load_state_dict(buffers, strict=False)
        acts.active, acts.forced = active, False
    records = acts.collect()
    acts.alive, acts.alive_rows = alive, rows
    return {n: a["pre_std"] for n, a in records.items() if "pre_std" in a}


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from _tensors(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)


def _finite(value: Any) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in _tensors(value) if t.is_floating_point())


@torch.no_grad()
def first_non_finite(model: nn.Module, inputs: torch.Tensor) -> dict[str, Any]:
    """Re-run ``model(inputs)`` and find where non-finite values start.

    Returns:
        ``{"origin": name or None, "passed_on": [names], "output_finite": bool,
        "params_finite": bool, "output_max_abs": float}``: the first module (in execution order) whose
        output is non-finite while its inputs are finite; the modules that
        received non-finite values and passed them on; whether the model's
        output is finite; whether the origin's own parameters are finite.
    """
    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    origin: list[tuple[str, nn.Module]] = []
    passed: list[str] = []

    def hook(name: str):
        def f(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            if _finite(output):
                return
            if _finite(args):
                if not origin:
                    origin.append((name, module))
            else:
                passed.append(name)

        return f

    handles = [m.register_forward_hook(hook(n)) for n, m in leaves]
    try:
        output = model(inputs)
    finally:
        for h in handles:
            h.remove()
    name, module = origin[0] if origin else (None, None)
    params_finite = module is None or all(bool(torch.isfinite(p).all()) for p in module.parameters())
    floats = [t.detach().abs().max().item() for t in _tensors(output) if t.is_floating_point() and t.numel()]
    return {"origin": name, "passed_on": passed, "output_finite": _finite(output), "params_finite": params_finite,
            "output_max_abs": max(floats, default=0.0)}
