"""Peak memory: `trainwell train` with the doctor on vs off, and the Trainer vs a hand-written loop.

Every measurement is a fresh process, read with ``os.wait4`` (that child's own
peak resident set, ``ru_maxrss``), so nothing one run allocated is counted in
another. Each kind runs ``--repeats`` times, interleaved; medians are printed.

1. ``trainwell train`` (the CLI, default MLP on MNIST-1D, checkpoints every
   epoch) with ``doctor.enabled=true`` vs ``false``. Target: the doctor adds at
   most 5% or 20 MB, whichever is larger.
2. trainwell's ``Trainer`` vs a hand-written loop (same model, data, optimizer,
   epochs), each in its own interpreter that imports the same modules; the
   interpreter and imports alone (``--child baseline``) are measured too.

    python benchmarks/memory.py [--epochs 30] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def peak_mb(cmd: list[str], env: dict[str, str] | None = None) -> float:
    """Peak RSS of the process ``cmd`` (MiB), from the kernel's accounting of that one child."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-2000:]}")
    return usage.ru_maxrss / 1024  # KiB on Linux


def child(kind: str, epochs: int) -> None:
    """Train in this process (run by the parent as ``--child KIND``)."""
    import torch
    import torch.nn.functional as F

    from trainwell.config import load_config
    from trainwell.loop import Trainer
    from trainwell.models import build_model
    from trainwell.optim import build_optimizer
    from trainwell.runs.prepare import configured_data

    cfg = load_config(None, [])
    torch.manual_seed(cfg.seed)
    data = configured_data(cfg.data)
    model = build_model(cfg.model, data.input_shape, data.n_classes, data.kind, data.mean, data.std)
    opt = build_optimizer(model, cfg.optim, cfg.reg)
    bs, train = cfg.data.batch_size, data.train
    if kind == "baseline":
        return
    if kind == "trainer":
        Trainer(model, opt, F.cross_entropy, train, data.val, epochs=epochs, batch_size=bs).fit()
        return
    g = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(train), generator=g)
        loss_sum = torch.zeros((), dtype=torch.float64)
        for i in range(0, len(train), bs):
            idx = order[i:i + bs]
            out = model(train.x[idx])
            loss = F.cross_entropy(out, train.y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach().double() * len(idx)
        with torch.no_grad():
            model.eval()
            F.cross_entropy(model(data.val.x), data.val.y).item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads in the children")
    parser.add_argument("--child", choices=["trainer", "hand", "baseline"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    env = {**os.environ, **({"OMP_NUM_THREADS": str(args.threads)} if args.threads else {})}
    if args.child:
        child(args.child, args.epochs)
        return
    exe = os.path.join(os.path.dirname(sys.executable), "trainwell")
    root = Path(tempfile.mkdtemp())
    runs: dict[str, list[float]] = {k: [] for k in ("doctor on", "doctor off", "trainer", "hand", "baseline")}
    for r in range(args.repeats):
        kinds = list(runs) if r % 2 == 0 else list(runs)[::-1]
        for kind in kinds:
            if kind.startswith("doctor"):
                cmd = [exe, "train", "-q", "--out", str(root / f"{kind}-{r}".replace(" ", "-")),
                       "--set", f"train.epochs={args.epochs}",
                       "--set", f"doctor.enabled={'true' if kind == 'doctor on' else 'false'}"]
            else:
                cmd = [sys.executable, str(HERE / "memory.py"), "--child", kind, "--epochs", str(args.epochs)]
            runs[kind].append(peak_mb(cmd, env))
            print(f"  round {r} {kind}: {runs[kind][-1]:.1f} MiB", flush=True)
    med = {k: statistics.median(v) for k, v in runs.items()}
    added = med["doctor on"] - med["doctor off"]
    allowed = max(0.05 * med["doctor off"], 20.0)
    print(f"`trainwell train`, {args.epochs} epochs, peak RSS (median of {args.repeats}): doctor on "
          f"{med['doctor on']:.1f} MiB, off {med['doctor off']:.1f} MiB: the doctor adds {added:+.1f} MiB "
          f"({100 * added / med['doctor off']:+.1f}%; allowed {allowed:.1f} MiB) - "
          f"{'met' if added <= allowed else 'NOT met'}")
    print(f"Trainer {med['trainer']:.1f} MiB vs hand-written loop {med['hand']:.1f} MiB "
          f"({med['trainer'] - med['hand']:+.1f} MiB); interpreter + imports + data + model alone "
          f"{med['baseline']:.1f} MiB")


if __name__ == "__main__":
    main()
