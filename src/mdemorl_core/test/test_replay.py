"""D_ENV / D_MPC replay buffers: FIFO, validation, uniform and mixed sampling, save / load."""

import io

import numpy as np
import pytest
import torch

from mdemorl_core.replay import ReplayBuffer, sample_mixed


def _filled(capacity: int, count: int, marker: float = 0.0) -> ReplayBuffer:
    buffer = ReplayBuffer(obs_dim=3, act_dim=2, capacity=capacity)
    for i in range(count):
        obs = np.full(3, marker + i, dtype=np.float32)
        buffer.add(obs, np.full(2, i, dtype=np.float32), float(i), obs + 1.0, i % 2 == 0)
    return buffer


def test_fifo_overwrites_oldest_rows() -> None:
    buffer = _filled(capacity=5, count=7)
    assert len(buffer) == 5 and buffer.total_added == 7
    assert sorted(buffer.all()["rew"].tolist()) == [2.0, 3.0, 4.0, 5.0, 6.0]


def test_add_batch_larger_than_capacity_keeps_newest() -> None:
    buffer = ReplayBuffer(1, 1, capacity=4)
    values = np.arange(10, dtype=np.float32)
    buffer.add_batch(values[:, None], values[:, None], values, values[:, None], np.zeros(10))
    assert sorted(buffer.all()["rew"].tolist()) == [6.0, 7.0, 8.0, 9.0]


def test_newest_and_keep_newest_follow_insertion_order_across_wraparound() -> None:
    buffer = _filled(capacity=5, count=8)  # rows 3..7 remain, stored wrapped around
    assert buffer.newest(3)["rew"].tolist() == [5.0, 6.0, 7.0]
    assert buffer.newest(99)["rew"].tolist() == [3.0, 4.0, 5.0, 6.0, 7.0]
    buffer.keep_newest(2)
    assert len(buffer) == 2 and buffer.total_added == 8
    assert buffer.newest(2)["rew"].tolist() == [6.0, 7.0]
    buffer.add(np.zeros(3), np.zeros(2), 8.0, np.zeros(3), False)
    assert buffer.newest(3)["rew"].tolist() == [6.0, 7.0, 8.0]
    buffer.keep_newest(0)
    assert len(buffer) == 0


def test_bad_shapes_and_nan_raise() -> None:
    buffer = ReplayBuffer(3, 2, capacity=10)
    with pytest.raises(ValueError, match="act"):
        buffer.add(np.zeros(3), np.zeros(3), 0.0, np.zeros(3), False)
    with pytest.raises(ValueError, match="NaN"):
        buffer.add(np.full(3, np.nan), np.zeros(2), 0.0, np.zeros(3), False)
    with pytest.raises(ValueError, match="empty"):
        buffer.sample(4, np.random.default_rng(0))


def test_uniform_sampling_covers_rows_evenly() -> None:
    buffer = _filled(capacity=10, count=10)
    rows = buffer.sample(20000, np.random.default_rng(0))["rew"]
    counts = np.bincount(rows.astype(int), minlength=10)
    assert counts.min() > 1800 and counts.max() < 2200


def test_mixed_sampling_respects_real_ratio() -> None:
    real = _filled(capacity=100, count=50, marker=1000.0)
    model = _filled(capacity=100, count=50, marker=-1000.0)
    batch = sample_mixed(real, model, 200, 0.25, np.random.default_rng(1), torch.device("cpu"))
    assert len(batch) == 200
    assert int((batch.obs[:, 0] >= 1000.0).sum()) == 50
    empty_model = ReplayBuffer(3, 2, capacity=10)
    all_real = sample_mixed(
        real, empty_model, 64, 0.25, np.random.default_rng(1), torch.device("cpu")
    )
    assert bool((all_real.obs[:, 0] >= 1000.0).all())
    with pytest.raises(ValueError, match="real_ratio"):
        sample_mixed(real, model, 8, 1.5, np.random.default_rng(1), torch.device("cpu"))


def test_save_load_round_trip(tmp_path) -> None:
    buffer = _filled(capacity=8, count=11)
    path = tmp_path / "buffer.npz"
    buffer.save(path)
    loaded = ReplayBuffer.load(path)
    assert (loaded.size, loaded.next_index, loaded.total_added) == (8, 3, 11)
    for name, array in buffer.all().items():
        np.testing.assert_array_equal(loaded.all()[name], array)
    first = buffer.sample(16, np.random.default_rng(5))
    second = loaded.sample(16, np.random.default_rng(5))
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])
    # Continuing to add after the reload overwrites the same (oldest) slot in both.
    for b in (buffer, loaded):
        b.add(np.zeros(3), np.zeros(2), 99.0, np.zeros(3), False)
    np.testing.assert_array_equal(buffer.rew, loaded.rew)


def test_state_dict_is_weights_only_loadable() -> None:
    buffer = _filled(capacity=6, count=4)
    stream = io.BytesIO()
    torch.save(buffer.state_dict(), stream)
    stream.seek(0)
    restored = ReplayBuffer(3, 2, capacity=6)
    restored.load_state_dict(torch.load(stream, weights_only=True))
    np.testing.assert_array_equal(restored.all()["next_obs"], buffer.all()["next_obs"])
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(3, 2, capacity=7).load_state_dict(buffer.state_dict())
