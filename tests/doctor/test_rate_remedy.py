"""The learning-rate remedy says what its factor is: a bound from the first step, never a rate known to train."""

import pytest

from trainwell.doctor.remedies import ScaleLR, lower_rate


def test_the_factor_aims_the_first_step_at_the_target_and_says_it_is_a_bound():
    remedy, words = lower_rate(first_step=1.158, largest_step=2.0, target=0.03)
    assert remedy == ScaleLR(pytest.approx(0.03 / 1.158, rel=0.01))
    assert words.startswith("lower the learning rate at least 38.6x")
    assert "would change them by 0.03" in words and "range test" in words


def test_a_small_first_step_does_not_claim_an_aim_it_misses():
    # the batch-size-1 case: a first step of 0.011 below the 0.03 aim, steps that grew later
    remedy, words = lower_rate(first_step=0.011, largest_step=0.4, target=0.03)
    assert remedy == ScaleLR(0.1)
    assert words.startswith("lower the learning rate at least 10x")
    assert "aims at" not in words and "would change them by" not in words
    assert "only 0.011" in words and "grew" in words
