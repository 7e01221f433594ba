"""``trainwell`` run as a user runs it, signalling itself once epoch N is in history.jsonl.

    python _signal_child.py SIGNUM N trainwell-args...

The signal arrives at a known point of the run (deterministic, no polling
against the clock); everything after it - the checkpoint, the message, the
exit code - is the command's own behaviour.
"""

import os
import sys

from trainwell.cli import main
from trainwell.loop import HistoryFile

signum, after = int(sys.argv[1]), int(sys.argv[2])
write_epoch = HistoryFile.on_epoch_end


def on_epoch_end(self, trainer):
    write_epoch(self, trainer)
    if trainer.epoch == after:
        os.kill(os.getpid(), signum)


HistoryFile.on_epoch_end = on_epoch_end
sys.argv = ["trainwell", *sys.argv[3:]]
main()
