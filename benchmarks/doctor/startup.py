"""What the audit and the lint add to the start of a run on MNIST-1D (issue 18's target: <= 50 ms together).

    python benchmarks/doctor/startup.py [--repeats 20] [--threads 1]

The default config's model (MLP 3 x 256), its optimizer and loss, the data
set's default 4000 rows: the median wall time of ``audit(train, val, test)``
and of ``lint(model, loss, first batch)`` over ``--repeats`` runs, with the
process's CPU time beside it (the wall time of a shared machine includes
waiting for a core). The end-of-run verdict runs at the end, not the start,
and is measured too.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from _common import machine  # noqa: E402
from trainwell.config import Config  # noqa: E402
from trainwell.data import load_data  # noqa: E402
from trainwell.doctor import Doctor, audit, lint  # noqa: E402
from trainwell.models import build_model  # noqa: E402
from trainwell.optim.registry import build_optimizer  # noqa: E402


def timed(f, repeats: int) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        f()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls) * 1000, statistics.median(cpus) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"machine: {machine()}")
    torch.manual_seed(0)
    cfg = Config.model_validate({})
    data = load_data(cfg.data.name)
    model = build_model(cfg.model, data.input_shape, data.n_classes, data.kind, data.mean, data.std)
    optimizer = build_optimizer(model, cfg.optim, cfg.reg)
    batch = (data.train.x[:cfg.data.batch_size], data.train.y[:cfg.data.batch_size])
    results = {
        "audit": timed(lambda: audit(data.train, data.val, data.test, n_classes=data.n_classes, standardized=True),
                       args.repeats),
        "lint": timed(lambda: lint(model, F.cross_entropy, batch, optimizer=optimizer, n_classes=data.n_classes),
                      args.repeats)}

    def verdict() -> None:
        doctor = Doctor(model, optimizer)
        doctor.keep_sample(data.train.x[:512], data.train.y[:512])
        doctor.finish()
        doctor.close()

    results["verdict (end of run)"] = timed(verdict, max(args.repeats // 4, 3))
    print(f"{len(data.train)} training rows, {len(data.val) + len(data.test)} validation + test rows")
    for name, (wall, cpu) in results.items():
        print(f"  {name:22s} {wall:7.1f} ms wall   {cpu:7.1f} ms CPU (median)")
    wall = results["audit"][0] + results["lint"][0]
    cpu = results["audit"][1] + results["lint"][1]
    print(f"audit + lint at the start of a run: {wall:.1f} ms wall, {cpu:.1f} ms CPU (target <= 50 ms)")


if __name__ == "__main__":
    main()
