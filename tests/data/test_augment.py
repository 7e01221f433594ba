import pytest
import torch

import trainwell
from trainwell.data.augment import augment_batch, expand_training_rows
from trainwell.loop import Augment
from trainwell.errors import TrainwellError


def test_shift_moves_each_signal_and_fills_zeros():
    x = torch.arange(1, 11, dtype=torch.float32).repeat(50, 1)  # (50, 10): 1..10
    out = augment_batch(x, "signal", torch.Generator().manual_seed(0), shift=3)
    for row in out:
        nz = row[row != 0]
        k = int((row == 0).sum())
        assert k <= 3 and torch.equal(nz, torch.arange(1, 11, dtype=torch.float32)[:len(nz)] + (nz[0] - 1))
    assert len({tuple(r.tolist()) for r in out}) > 3  # different shifts per row


def test_crop_takes_a_window_of_the_padded_input():
    x = torch.randn(20, 6, 6)
    out = augment_batch(x, "image", torch.Generator().manual_seed(1), crop=2)
    padded = torch.nn.functional.pad(x, [2, 2, 2, 2])
    for i in range(20):
        assert any(torch.equal(out[i], padded[i, a:a + 6, b:b + 6]) for a in range(5) for b in range(5))


def test_rotation_keeps_shapes_and_zero_degrees_is_identity():
    x = torch.rand(8, 8, 8)
    same = augment_batch(x, "image", torch.Generator().manual_seed(0), rotate=1e-9)
    torch.testing.assert_close(same, x, atol=1e-4, rtol=0)
    turned = augment_batch(x, "image", torch.Generator().manual_seed(0), rotate=45)
    assert turned.shape == x.shape and not torch.allclose(turned, x)


def test_noise_is_in_units_of_each_features_spread_and_reproducible():
    scale = torch.tensor([1.0, 10.0])
    cb = Augment("tabular", seed=3, scale=scale, noise=0.5)

    class T:
        xb = torch.zeros(20000, 2)

    t = T()
    cb.on_batch_start(t)
    torch.testing.assert_close(t.xb.std(0), 0.5 * scale, rtol=0.03, atol=0)
    state = cb.state_dict()
    first = T()
    cb.on_batch_start(first)
    cb.load_state_dict(state)
    again = T()
    cb.on_batch_start(again)
    assert torch.equal(first.xb, again.xb)  # the generator state is what a checkpoint keeps


def test_expanded_rows_follow_each_class():
    x = torch.cat([torch.randn(300, 2), torch.randn(100, 2) + 10])
    y = torch.cat([torch.zeros(300, dtype=torch.long), torch.ones(100, dtype=torch.long)])
    xe, ye = expand_training_rows(x, y, duplicate=1, gaussian=2, seed=0)
    assert len(xe) == 400 + 400 + 800 and torch.equal(xe[:400], x)
    new = xe[800:]
    assert abs(new[ye[800:] == 1].mean().item() - 10) < 0.3 and (ye[800:] == 1).sum() == 200


def test_augmentation_that_does_not_fit_the_data_is_a_one_line_error(tmp_path):
    with pytest.raises(TrainwellError, match="rotate turns images; this data set is signal"):
        trainwell.train({"data": {"augment": {"rotate": 10}}, "train": {"epochs": 1, "progress": False}},
                        out=tmp_path / "r")
    assert not (tmp_path / "r").exists()
