"""The lint: static checks of a model and its loss before training (after UMLAUT, Schoop et al. 2021).

One forward pass of a sample batch in eval mode, without gradients to the
parameters, and the loss's gradient with respect to that output; nothing of
the model, the optimizer or the random state changes. Each check is a
finding (epoch 0, step 0) with its cause and remedy, silent on healthy models:

* ``double_softmax``: the output rows are probabilities (in [0, 1], summing to
  1) and the loss is unchanged when a constant is added to every output of a
  row - it applies its own softmax. Cross-entropy then sees logits confined
  to [0, 1]: its loss cannot fall below ``log(1 + (C-1)/e)`` and its gradient
  is squeezed through the softmax's Jacobian. (Log-probabilities into a loss
  that applies its own log-softmax are harmless - log-softmax is idempotent
  - and are not reported.)
* ``small_output_gradient``: the loss's gradient for a confidently wrong
  output against its
  gradient at the model's own output, both relative to cross-entropy's at the
  same points (every class 8 below, a wrong one 8 above). Cross-entropy's gradient grows with the mistake; a loss that
  passes a sigmoid or a softmax into MSE multiplies it by the squashing's
  derivative, ~e^-8: the model stops learning from its worst mistakes
  (seed 001). The outputs are first mapped back to logits when the model
  squashes them itself.
* ``loss_sum_reduction``: the loss's gradient at the model's output is
  about batch-size times cross-entropy's mean: reduction ``sum``, so every
  step is as many times larger than the rate was chosen for.
* ``output_width_mismatch``: the model has more outputs than the data have classes.
* ``dropout_too_high``: a dropout module with p >= 0.8 (p is the drop
  probability; 0.8-0.9 is usually a keep probability written as p).
* ``small_batch_norm``: batch norm on batches of fewer than 8 rows: its mean and
  variance are estimated from too few rows, its noise swamps the signal and
  its running estimates do not match training.
* ``missing_nonlinearity``: a linear or convolution layer's output reaches
  another one through nothing but dropout, batch norm, flattening or identity,
  and nothing else reads it: the two are one linear map (a skip connection
  reading it too makes the pair part of a residual stream).
* ``weight_decay_on_norms``: 1-D parameters (biases, norm gains) decayed
  although the caller asked otherwise (``exclude_bias_and_norm=True``), or
  although the optimizer's groups set some parameters apart without decay -
  the user meant to exclude them and the filter missed these.

Example:
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.Softmax(dim=1))
    >>> x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    >>> [f.symptom for f in lint(model, nn.functional.cross_entropy, (x, y))]
    ['double_softmax']
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from trainwell.doctor.findings import Finding
from trainwell.doctor.remedies import AddDropout, AddNorm, ScaleLR
from trainwell.doctor.thresholds import Thresholds

__all__ = ["lint"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
_LINEAR = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_PASSTHROUGH = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.Identity, nn.Flatten,
                nn.Unflatten, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_DECAY_KEYS = ("weight_decay", "l2", "decoupled_weight_decay", "l1")
_MARGIN = 8.0  # the confidently wrong output: the wrong class this far above, the right one this far below


def _finding(symptom: str, evidence: dict[str, Any], *, cause: str, layer: str | None = None, remedy: str = "",
             remedies: list | None = None, severity: str = "warning") -> Finding:
    return Finding(symptom, severity, 0, 0, evidence, cause, layer, remedy, remedies)


def lint(model: nn.Module, loss_fn: LossFn | None = None, sample_batch: tuple[torch.Tensor, torch.Tensor] | None = None,
         *, optimizer: Any = None, n_classes: int | None = None, exclude_bias_and_norm: bool | None = None,
         forward: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
         thresholds: Thresholds | None = None) -> list[Finding]:
    """Check ``model`` and ``loss_fn`` on ``sample_batch`` before training.

    Args:
        model: any ``nn.Module``; it is put back in the mode it was in.
        loss_fn: ``f(output, y) -> scalar`` (None: the loss checks are skipped).
        sample_batch: ``(x, y)``, a batch as training will see it (its length is the batch size).
        optimizer: the optimizer (its parameter groups are checked for weight decay).
        n_classes: the data's classes (default: the sample's largest label + 1 is not guessed: the
            width check is skipped).
        exclude_bias_and_norm: True if the caller asked for 1-D parameters not to be decayed.
        forward: ``f(model, x, y) -> output`` (default ``model(x)``).
        thresholds: the rules' thresholds.

    Returns:
        Findings at epoch 0, step 0 (empty for a healthy model).
    """
    t = thresholds or Thresholds()
    findings = [*_dropout(model, t), *_decay(model, optimizer, exclude_bias_and_norm)]
    if sample_batch is None:
        return findings
    x, y = sample_batch
    batch = len(x)
    norms = [n for n, m in model.named_modules() if "BatchNorm" in type(m).__name__]
    if norms and batch < t.small_batch_norm:
        findings.append(_finding("small_batch_norm", {"batch_size": batch, "batch_norm_layers": norms[:5]},
                                 cause="small_batch", layer=norms[0], remedies=[AddNorm("layer")],
                                 remedy=f"use batches of {t.small_batch_norm} rows or more, or a norm that does not "
                                        "depend on the batch (layer or group norm)"))
    output, pairs, last = _trace(model, x, y, forward)
    if pairs:
        first, second = pairs[0]
        findings.append(_finding("missing_nonlinearity", {"linear_pairs": [f"{a} -> {b}" for a, b in pairs[:5]]},
                                 cause="architecture", layer=second,
                                 remedy=f"put a nonlinearity (ReLU) between {first} and {second}: two linear maps in a "
                                        "row are one linear map", remedies=[]))
    if loss_fn is not None and isinstance(output, torch.Tensor) and output.dim() == 2 and output.shape[1] >= 2 \
            and y.dim() == 1 and not y.is_floating_point() and len(y) == len(output):
        findings += _loss_checks(output.detach().float(), y, loss_fn, n_classes, batch, optimizer, t,
                                 sigmoid_head=isinstance(last, nn.Sigmoid))
    return findings


def _dropout(model: nn.Module, t: Thresholds) -> list[Finding]:
    high = {n: float(m.p) for n, m in model.named_modules()
            if "Dropout" in type(m).__name__ and isinstance(getattr(m, "p", None), (int, float)) and m.p >= t.dropout_high}
    if not high:
        return []
    name = next(iter(high))
    keep = round(1.0 - high[name], 3)
    return [_finding("dropout_too_high", {"dropout_p": high}, cause="keep_probability_as_p", layer=name,
                     remedy=f"p is the probability of dropping a unit: p={high[name]:g} keeps {keep:g} of them; for a "
                            f"keep probability of {high[name]:g} write p={keep:g}", remedies=[AddDropout(keep)])]


def _decay(model: nn.Module, optimizer: Any, asked: bool | None) -> list[Finding]:
    groups = getattr(optimizer, "param_groups", None)
    if not groups:
        return []
    # numbers only: torch's AdamW keeps a flag ``decoupled_weight_decay=True`` under the key trainwell's groups
    # use for the coefficient
    decay = [sum(float(v) for k in _DECAY_KEYS if isinstance(v := g.get(k), (int, float)) and not isinstance(v, bool))
             for g in groups]
    separated = any(d == 0 and g["params"] for d, g in zip(decay, groups)) and any(d > 0 for d in decay)
    if not (asked or (asked is None and separated)):
        return []
    names = {id(p): n for n, p in model.named_parameters()}
    hit = [names.get(id(p), "?") for d, g in zip(decay, groups) if d > 0 for p in g["params"] if p.dim() <= 1]
    if not hit:
        return []
    why = "the caller asked for biases and norms not to be decayed" if asked else \
        "the optimizer's groups set parameters apart without decay, but these 1-D ones are decayed"
    return [_finding("weight_decay_on_norms", {"decayed_1d_parameters": hit[:10], "n": len(hit), "why": why},
                     cause="decay_filter", layer=hit[0].rsplit(".", 1)[0],
                     remedy="put every 1-D parameter (biases, norm gains and shifts) in the group without decay: "
                            "decay shrinks a norm's gain towards 0 and the layer's output with it", remedies=[])]


def _trace(model: nn.Module, x: torch.Tensor, y: torch.Tensor, forward
           ) -> tuple[Any, list[tuple[str, str]], nn.Module | None]:
    """One eval-mode forward pass: the output, the pairs of linear layers with no nonlinearity between them,
    and the last module that ran.

    Tensors are followed by their storage (a view, as flatten makes, keeps it);
    every output is held until the end so that no storage is reused meanwhile.
    A pair whose first output is also read elsewhere (a skip connection: the
    residual stream's ``x + f(x)``) is not one linear map and is left out:
    the autograd graph of the pass counts each output's readers.
    """
    linear_of: dict[int, str] = {}
    nodes_of: dict[int, list[Any]] = {}  # the autograd nodes from a linear output to this storage
    pairs: list[tuple[str, str, list[Any]]] = []
    held: list[torch.Tensor] = []
    last: list[nn.Module] = []

    def hook(name: str, module: nn.Module):
        def f(mod: nn.Module, args: tuple[Any, ...], out: Any) -> None:
            last[:] = [module]
            if not isinstance(out, torch.Tensor):
                return
            held.append(out)
            inp = args[0] if args and isinstance(args[0], torch.Tensor) else None
            source = linear_of.get(inp.data_ptr()) if inp is not None and inp.numel() else None
            chain = nodes_of.get(inp.data_ptr(), []) if source is not None else []
            if isinstance(module, _LINEAR):
                if source is not None:
                    pairs.append((source, name, chain))
                linear_of[out.data_ptr()], nodes_of[out.data_ptr()] = name, [out.grad_fn]
            elif isinstance(module, _PASSTHROUGH) and source is not None:
                linear_of[out.data_ptr()], nodes_of[out.data_ptr()] = source, [*chain, out.grad_fn]
            else:  # a nonlinearity (also in place: the same storage, now past it)
                linear_of.pop(out.data_ptr(), None)
        return f

    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook(n, m)) for n, m in leaves]
    was_training = model.training
    try:
        model.eval()
        with torch.enable_grad():  # the graph, for the readers of each output (nothing is backpropagated)
            output = forward(model, x, y) if forward is not None else model(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    readers = _readers(output)
    alone = [(a, b) for a, b, chain in pairs if all(readers.get(n, 0) <= 1 for n in chain if n is not None)]
    return output, alone, (last[0] if last else None)


def _readers(output: Any) -> dict[Any, int]:
    """How many autograd nodes of the pass read each node's output (from the output back to the inputs)."""
    outs = [output] if isinstance(output, torch.Tensor) else \
        [o for o in (output.values() if isinstance(output, dict) else output) if isinstance(o, torch.Tensor)] \
        if isinstance(output, (tuple, list, dict)) else []
    readers: dict[Any, int] = {}
    seen: set[Any] = set()
    todo = [o.grad_fn for o in outs if o.grad_fn is not None]
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        for nxt, _ in node.next_functions:
            if nxt is not None:
                readers[nxt] = readers.get(nxt, 0) + 1
                todo.append(nxt)
    return readers


def _squashed(output: torch.Tensor, sigmoid_head: bool
              ) -> tuple[str, torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
    """What the model's outputs are, the logits behind them, and the map from those logits back.

    Rows in [0, 1] that sum to 1 are a softmax's (logits do not do that by
    chance); other outputs in [0, 1] are a sigmoid's only when the model's last
    module is one (small logits of a fresh model also lie in [0, 1]).
    """
    inside = bool(((output >= -1e-6) & (output <= 1 + 1e-6)).all())
    if inside and bool(((output.sum(1) - 1).abs() < 1e-4).all()):
        return "probabilities", output.clamp_min(1e-12).log(), lambda u: u.softmax(1)
    if inside and sigmoid_head:
        p = output.clamp(1e-6, 1 - 1e-6)
        return "sigmoid", (p / (1 - p)).log(), torch.sigmoid
    return "logits", output, lambda u: u


def _grad(f: Callable[[torch.Tensor], torch.Tensor], u: torch.Tensor) -> torch.Tensor:
    u = u.detach().requires_grad_()
    with torch.enable_grad():
        (g,) = torch.autograd.grad(f(u), u)
    return g


def _loss_checks(output: torch.Tensor, y: torch.Tensor, loss_fn: LossFn, n_classes: int | None, batch: int,
                 optimizer: Any, t: Thresholds, sigmoid_head: bool = False) -> list[Finding]:
    findings: list[Finding] = []
    width = output.shape[1]
    if n_classes is not None and width > n_classes:
        findings.append(_finding("output_width_mismatch", {"outputs": width, "classes": n_classes},
                                 cause="architecture", remedy=f"give the last layer {n_classes} outputs, one per class",
                                 remedies=[]))
    if int(y.min()) < 0 or int(y.max()) >= width:
        return findings  # labels the output cannot score: the audit reports them
    with torch.no_grad():
        plain = float(loss_fn(output, y))
        try:  # a loss that refuses shifted outputs (BCE on probabilities) applies no softmax of its own
            shifted = float(loss_fn(output + 3.0, y))
        except Exception:  # noqa: BLE001 - any refusal means the same
            shifted = math.nan
    own_softmax = math.isfinite(plain) and abs(shifted - plain) <= 1e-4 * max(abs(plain), 1e-3)
    kind, logits, squash = _squashed(output, sigmoid_head)
    if kind == "probabilities" and own_softmax:
        findings.append(_finding("double_softmax", {"output_row_sums": 1.0, "loss_unchanged_by_shift": True,
                                                    "lowest_possible_loss": math.log(1 + (width - 1) / math.e)},
                                 cause="softmax_before_loss", layer="loss",
                                 remedy="remove the softmax at the end of the model: the loss applies its own to the "
                                        "model's outputs (or feed log_softmax to NLLLoss)", remedies=[]))
        return findings
    composed = (lambda u: loss_fn(squash(u), y)) if kind != "logits" else (lambda u: loss_fn(u, y))
    wrong = torch.full_like(logits, -_MARGIN)  # every class confidently off, the wrong one confidently on
    wrong[torch.arange(len(y)), (y + 1) % width] = _MARGIN
    sizes = {}
    try:  # the loss on outputs the model did not make: one that cannot take them is not judged
        for point, u in (("own", logits), ("wrong", wrong)):
            g, ce = _grad(composed, u), _grad(lambda v: F.cross_entropy(v, y), u)
            sizes[point] = float(g.norm()) / max(float(ce.norm()), 1e-30)
    except Exception:  # noqa: BLE001
        return findings
    if not all(math.isfinite(v) for v in sizes.values()):
        return findings
    own = sizes["own"]
    if own > 0 and sizes["wrong"] / own < t.output_gradient_saturated:
        findings.append(_finding("small_output_gradient",
                                 {"gradient_vs_cross_entropy_at_output": own,
                                  "gradient_vs_cross_entropy_confidently_wrong": sizes["wrong"],
                                  "outputs": kind},
                                 cause="squashed_loss", layer="loss",
                                 remedy="use cross-entropy from logits (or BCE for sigmoid outputs): with MSE after a "
                                        "sigmoid or softmax the gradient carries the squashing's derivative, ~0 for "
                                        "the worst mistakes", remedies=[]))
    elif batch >= 4 and own > batch * t.sum_reduction_share:
        adaptive = any("betas" in g or "alpha" in g or "rho" in g or "lr_decay" in g
                       for g in getattr(optimizer, "param_groups", []))
        findings.append(_finding("loss_sum_reduction", {"gradient_vs_mean_cross_entropy": own, "batch_size": batch,
                                                        "scale_invariant_optimizer": adaptive},
                                 cause="sum_reduction", layer="loss", severity="info" if adaptive else "warning",
                                 remedy=f"use reduction='mean', or divide the learning rate by the batch size "
                                        f"({batch}): the summed loss's gradient is {own:.3g}x the mean's"
                                        + (" (an adaptive optimizer divides the scale out: only info)" if adaptive
                                           else ""), remedies=[] if adaptive else [ScaleLR(float(f"{1 / batch:.3g}"))]))
    return findings
