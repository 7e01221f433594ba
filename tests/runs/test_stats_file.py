"""A run's stats.jsonl: one line per sampled step, the same after an interruption and a resume as without one."""

import os
import signal

import pytest

import trainwell
from trainwell.doctor.record import read_stats
from trainwell.loop import Callback

RUN = {"name": "stats", "seed": 1, "data": {"name": "moons", "n_samples": 300, "batch_size": 16},
       "model": {"width": 16, "depth": 2}, "train": {"epochs": 6, "progress": False}, "doctor": {"every": 5}}


class StopAt(Callback):
    """SIGINT at update 43, in epoch 4 (12 updates an epoch), after the sample of step 40."""

    def on_batch_end(self, trainer) -> None:
        if trainer.step == 43:
            os.kill(os.getpid(), signal.SIGINT)


def test_stats_match_an_uninterrupted_run(tmp_path):
    whole = trainwell.train(RUN, out=tmp_path / "whole")
    expected = read_stats(whole.dir / "stats.jsonl")
    steps_per_epoch = whole.history[0]["step"]
    assert [s["step"] for s in expected] == list(range(0, 6 * steps_per_epoch, 5))
    with pytest.raises(trainwell.Interrupted):
        trainwell.train(RUN, out=tmp_path / "cut", callbacks=[StopAt()], handle_signals=True)
    cut = read_stats(tmp_path / "cut" / "stats.jsonl")
    assert steps_per_epoch == 12 and cut[-1]["step"] == 40  # written before the interruption
    trainwell.train(resume=tmp_path / "cut")
    resumed = read_stats(tmp_path / "cut" / "stats.jsonl")
    assert [s["step"] for s in resumed] == [s["step"] for s in expected]
    for x, y in zip(resumed, expected, strict=True):  # exact resume: the same numbers
        assert x["layers"].keys() == y["layers"].keys() and x["activations"].keys() == y["activations"].keys()
        for name in x["layers"]:
            for key, value in x["layers"][name].items():
                assert value == pytest.approx(y["layers"][name][key], rel=1e-6), (x["step"], name, key)
