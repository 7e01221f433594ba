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

import trainwell
from trainwell.loop import Callback

config, out, mode, n = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])


class KillAfterStep(Callback):
    def on_after_step(self, trainer):
        if mode == "step" and trainer.step == n:
            os.kill(os.getpid(), signal.SIGKILL)


if mode == "write":
    real_replace, calls = os.replace, [0]

    def die_before_rename(src, dst):
        if str(dst).endswith(".safetensors") and "step-" in str(dst):
            calls[0] += 1
            if calls[0] == n:  # the temporary file is written and fsync'ed, the rename has not happened
                os.kill(os.getpid(), signal.SIGKILL)
        real_replace(src, dst)

    os.replace = die_before_rename

trainwell.train(config, out=out, callbacks=[KillAfterStep()], progress=False, handle_signals=True)
