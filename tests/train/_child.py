"""A training run for the reliability tests, run in a subprocess that gets killed.

    python _child.py CONFIG_JSON OUT MODE N
MODE: "step"  - SIGKILL itself right after update N;
      "write" - SIGKILL itself inside the N-th checkpoint write (temporary file
                written, not yet renamed);
      "none"  - run to the end.
"""

import json
import os
import signal
import sys

import safetensors.torch

import trainwell
from trainwell.train import Callback

config, out, mode, n = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])


class KillAfterStep(Callback):
    def on_after_step(self, trainer):
        if mode == "step" and trainer.step == n:
            os.kill(os.getpid(), signal.SIGKILL)


if mode == "write":
    real_save, calls = safetensors.torch.save_file, [0]

    def save_then_die(tensors, path, metadata=None):
        real_save(tensors, path, metadata=metadata)
        calls[0] += 1
        if calls[0] == n:
            os.kill(os.getpid(), signal.SIGKILL)

    safetensors.torch.save_file = save_then_die

trainwell.train(config, out=out, callbacks=[KillAfterStep()], progress=False)
