"""The price of the model file's checksum (issue 24): save and load with the CRC-32 against without it.

A ~10M-parameter MLP (40 MB of float32) is saved as ``model.safetensors``:

1. save: :func:`trainwell.io.save_model` (safetensors, CRC-32 over the header's
   data and every tensor, temporary file, fsync, rename) against the same write
   without the CRC (``atomic_save_safetensors`` with the other metadata);
2. load: :func:`trainwell.io.read_model_file` (reads, then checks the CRC)
   against :func:`trainwell.io.read_safetensors` of the same file (reads only).
   safetensors maps the file lazily, so the baseline barely touches the bytes
   and the CRC pays for reading them: the added milliseconds per MB are the
   figure to read, not the ratio.

Candidate and baseline alternate in one process (``_common.interleaved``), so
the ratio holds under this machine's noise even where the times do not.

    python benchmarks/model_file.py [--rounds 15] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch
from torch import nn

from _common import add_threads_argument, apply_threads, interleaved, machine, ratio_summary
from trainwell.io import MODEL_FILE, MODEL_FORMAT, atomic_save_safetensors, read_model_file, read_safetensors, \
    save_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    add_threads_argument(parser)
    args = parser.parse_args()
    apply_threads(args)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1000, 2000), nn.ReLU(), nn.Linear(2000, 2000), nn.ReLU(),
                          nn.Linear(2000, 2000), nn.ReLU(), nn.Linear(2000, 10))
    n = sum(p.numel() for p in model.parameters())
    meta = {"input_shape": [1000], "n_classes": 10, "kind": "tabular"}
    with tempfile.TemporaryDirectory() as tmp:
        with_crc, without = Path(tmp) / "a", Path(tmp) / "b"
        with_crc.mkdir()
        without.mkdir()
        state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}

        def plain_save():
            atomic_save_safetensors(without / MODEL_FILE, state, {"format": MODEL_FORMAT, "data": json.dumps(meta)})

        save = ratio_summary(*interleaved(lambda: save_model(model, with_crc, meta), plain_save, args.rounds))
        load = ratio_summary(*interleaved(lambda: read_model_file(with_crc / MODEL_FILE),
                                          lambda: read_safetensors(with_crc / MODEL_FILE), args.rounds))
        size = (with_crc / MODEL_FILE).stat().st_size
    print(f"machine: {machine()}")
    print(f"model: {n / 1e6:.1f}M parameters, {size / 1e6:.1f} MB file; {args.rounds} interleaved rounds")
    for name, s in (("save (CRC vs none)", save), ("load (CRC check vs none)", load)):
        extra = (s["median_candidate_s"] - s["median_baseline_s"]) * 1e3
        print(f"{name}: {s['median_candidate_s'] * 1e3:.1f} ms vs {s['median_baseline_s'] * 1e3:.1f} ms "
              f"(+{extra:.1f} ms, {extra / (size / 1e6):.2f} ms per MB), ratio of medians "
              f"{s['ratio_of_medians']:.2f}, median of ratios {s['median_of_ratios']:.2f}")


if __name__ == "__main__":
    main()
