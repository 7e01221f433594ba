"""One process of a data-parallel trainwell.train(), for tests/runs/test_distributed_run.py.

    python -m torch.distributed.run --standalone --nproc-per-node 2 _ddp_train.py CONFIG_JSON OUT MODE N

MODE: "poison" - rank 1 alone makes its loss NaN after update N (the doctor's NaN stop, one rank);
      "kill"   - rank 0 SIGKILLs itself right after update N (torchrun's agent then stops rank 1);
      "none"   - run to the end.
Rank 0 writes OUT/result.json (the run's status and the steps each rank made) when the run ends.
"""

import json
import os
import signal
import sys

import torch
import torch.distributed as dist

import trainwell
from trainwell.loop import Callback

config, out, mode, n = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])


class Fault(Callback):
    def on_after_loss(self, trainer):
        if mode == "poison" and dist.get_rank() == 1 and trainer.step == n:
            trainer.loss = trainer.loss * float("nan")

    def on_after_step(self, trainer):
        if mode == "kill" and dist.get_rank() == 0 and trainer.step == n:
            os.kill(os.getpid(), signal.SIGKILL)


torch.set_num_threads(1)
run = trainwell.train(config, out=out, callbacks=[Fault()])
steps = [None] * dist.get_world_size()
dist.all_gather_object(steps, run.history[-1]["step"] if run.history else 0)
if dist.get_rank() == 0:
    with open(os.path.join(out, "result.json"), "w") as f:
        json.dump({"status": run.metrics["status"], "steps": steps, "metrics": run.metrics,
                   "findings": [f.to_dict() for f in run.findings]}, f)
