import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from trainwell.data.samplers import DistributedWeightedSampler, balanced_row_weights


def test_ranks_together_see_one_weighted_draw_and_classes_come_out_balanced():
    y = torch.cat([torch.zeros(900, dtype=torch.long), torch.ones(100, dtype=torch.long)])
    w = balanced_row_weights(y)
    shards = [list(DistributedWeightedSampler(w, 4000, num_replicas=3, rank=r, seed=7)) for r in range(3)]
    whole = list(DistributedWeightedSampler(w, 4000, num_replicas=1, rank=0, seed=7))
    merged = [shards[i % 3][i // 3] for i in range(4000)]
    assert merged == whole  # the shards interleave back into the single-process draw
    assert [len(s) for s in shards] == [1334, 1333, 1333]
    share = (y[torch.tensor(whole)] == 1).float().mean().item()
    assert abs(share - 0.5) < 0.03  # minority drawn as often as the majority


def test_epochs_reshuffle_and_work_in_a_dataloader():
    y = torch.tensor([0, 0, 0, 1])
    s = DistributedWeightedSampler(balanced_row_weights(y), 8, seed=1)
    first = list(s)
    s.set_epoch(1)
    assert list(s) != first
    loader = DataLoader(TensorDataset(torch.arange(4)), batch_size=4, sampler=s)
    assert sum(len(b[0]) for b in loader) == 8


def test_bad_arguments_say_what_is_wrong():
    with pytest.raises(ValueError, match="non-negative"):
        DistributedWeightedSampler([0.0, 0.0])
    with pytest.raises(ValueError, match="rank must lie in"):
        DistributedWeightedSampler([1.0], num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="without replacement"):
        DistributedWeightedSampler([1.0, 0.0], 2, replacement=False)
