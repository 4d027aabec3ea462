"""Replay buffers D_ENV (real transitions) and D_MPC (model transitions from the inner loop).

Both are the same FIFO ring buffer over preallocated float32 arrays: once ``capacity`` is reached
the oldest rows are overwritten (for D_MPC this retires stale model data). Sampling is uniform
with replacement and takes the caller's ``numpy.random.Generator`` so runs are reproducible.
Shapes: ``N`` rows, ``O`` observation dimension, ``A`` action dimension.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from mdemorl_core.types import TransitionBatch

_FIELDS = ("obs", "act", "rew", "next_obs", "done")


class ReplayBuffer:
    """FIFO transition store with ``capacity`` rows (obs, act, rew, next_obs, done)."""

    def __init__(self, obs_dim: int, act_dim: int, capacity: int) -> None:
        if obs_dim < 1 or act_dim < 1:
            raise ValueError(f"obs_dim and act_dim must be >= 1, got {obs_dim}, {act_dim}")
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.obs_dim = obs_dim
        self.act_dim = act_dim
        self.capacity = capacity
        self.obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.act = np.zeros((capacity, act_dim), dtype=np.float32)
        self.rew = np.zeros(capacity, dtype=np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.done = np.zeros(capacity, dtype=np.float32)
        self.size = 0
        self.next_index = 0
        self.total_added = 0

    def __len__(self) -> int:
        return self.size

    def add(
        self,
        obs: np.ndarray,
        act: np.ndarray,
        rew: float,
        next_obs: np.ndarray,
        terminated: bool,
    ) -> None:
        """Append one transition (obs ``O``, act ``A``)."""
        self.add_batch(
            np.asarray(obs)[None],
            np.asarray(act)[None],
            np.asarray([rew]),
            np.asarray(next_obs)[None],
            np.asarray([terminated]),
        )

    def add_batch(
        self,
        obs: np.ndarray,
        act: np.ndarray,
        rew: np.ndarray,
        next_obs: np.ndarray,
        done: np.ndarray,
    ) -> None:
        """Append ``N`` transitions: obs ``N x O``, act ``N x A``, rew ``N``, next_obs ``N x O``,
        done ``N``. If ``N`` exceeds the capacity only the newest ``capacity`` rows are kept."""
        count = len(obs)
        expected = {
            "obs": (count, self.obs_dim),
            "act": (count, self.act_dim),
            "rew": (count,),
            "next_obs": (count, self.obs_dim),
            "done": (count,),
        }
        arrays = {"obs": obs, "act": act, "rew": rew, "next_obs": next_obs, "done": done}
        for name, array in arrays.items():
            if np.shape(array) != expected[name]:
                raise ValueError(f"{name} has shape {np.shape(array)}, expected {expected[name]}")
            if not np.all(np.isfinite(array)):
                raise ValueError(f"{name} contains NaN or Inf")
        self.total_added += count
        if count > self.capacity:
            arrays = {name: array[-self.capacity :] for name, array in arrays.items()}
            count = self.capacity
        indices = (self.next_index + np.arange(count)) % self.capacity
        for name, array in arrays.items():
            getattr(self, name)[indices] = array
        self.next_index = int((self.next_index + count) % self.capacity)
        self.size = min(self.size + count, self.capacity)

    def sample_indices(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        """``batch_size`` row indices drawn uniformly with replacement."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        return rng.integers(0, self.size, size=batch_size)

    def gather(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        """Rows at ``indices`` as a dict of arrays (obs ``N x O`` ...)."""
        return {name: getattr(self, name)[indices] for name in _FIELDS}

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Uniform minibatch of ``batch_size`` rows as arrays."""
        return self.gather(self.sample_indices(batch_size, rng))

    def newest(self, count: int) -> dict[str, np.ndarray]:
        """The ``min(count, size)`` most recently added rows, oldest first, as arrays."""
        count = min(max(count, 0), self.size)
        indices = (self.next_index - count + np.arange(count)) % self.capacity
        return self.gather(indices)

    def keep_newest(self, count: int) -> None:
        """Drop all but the ``count`` most recently added rows (retires stale model data)."""
        if count >= self.size:
            return
        kept = self.newest(count)
        self.size = 0
        self.next_index = 0
        total = self.total_added
        if count > 0:
            self.add_batch(kept["obs"], kept["act"], kept["rew"], kept["next_obs"], kept["done"])
        self.total_added = total

    def all(self) -> dict[str, np.ndarray]:
        """Every stored row (oldest first is NOT guaranteed) as arrays of ``size`` rows."""
        return {name: getattr(self, name)[: self.size] for name in _FIELDS}

    def state_dict(self) -> dict[str, Any]:
        """Tensors and ints only, so ``torch.load(weights_only=True)`` can read it back."""
        state: dict[str, Any] = {
            name: torch.from_numpy(getattr(self, name)[: self.size].copy()) for name in _FIELDS
        }
        state.update(
            obs_dim=self.obs_dim,
            act_dim=self.act_dim,
            capacity=self.capacity,
            size=self.size,
            next_index=self.next_index,
            total_added=self.total_added,
        )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in ("obs_dim", "act_dim", "capacity"):
            if int(state[name]) != getattr(self, name):
                raise ValueError(
                    f"replay {name} mismatch: stored {state[name]}, buffer {getattr(self, name)}"
                )
        size = int(state["size"])
        for name in _FIELDS:
            values = state[name]
            array = values.numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
            getattr(self, name)[:size] = array
            getattr(self, name)[size:] = 0.0
        self.size = size
        self.next_index = int(state["next_index"])
        self.total_added = int(state["total_added"])

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the buffer to an ``.npz`` file (arrays + counters)."""
        counters = np.array(
            [
                self.obs_dim,
                self.act_dim,
                self.capacity,
                self.size,
                self.next_index,
                self.total_added,
            ],
            dtype=np.int64,
        )
        with open(path, "wb") as handle:
            np.savez(
                handle,
                counters=counters,
                obs=self.obs[: self.size],
                act=self.act[: self.size],
                rew=self.rew[: self.size],
                next_obs=self.next_obs[: self.size],
                done=self.done[: self.size],
            )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ReplayBuffer:
        """Read a buffer written by :meth:`save`."""
        with np.load(path) as data:
            obs_dim, act_dim, capacity, size, next_index, total_added = (
                int(v) for v in data["counters"]
            )
            buffer = cls(obs_dim, act_dim, capacity)
            state: dict[str, Any] = {name: data[name] for name in _FIELDS}
        state.update(
            obs_dim=obs_dim,
            act_dim=act_dim,
            capacity=capacity,
            size=size,
            next_index=next_index,
            total_added=total_added,
        )
        buffer.load_state_dict(state)
        return buffer


def sample_mixed(
    real: ReplayBuffer,
    model: ReplayBuffer,
    batch_size: int,
    real_ratio: float,
    rng: np.random.Generator,
    device: torch.device,
) -> TransitionBatch:
    """Minibatch of ``batch_size`` rows: ``round(real_ratio * batch_size)`` from ``real``, the rest
    from ``model``. An empty ``model`` buffer (or ``real_ratio`` 1) gives an all-real batch.
    Rows are ordered real first, then model; SAC losses are means, so the order does not matter."""
    if not 0.0 <= real_ratio <= 1.0:
        raise ValueError(f"real_ratio must be in [0, 1], got {real_ratio}")
    num_real = batch_size if len(model) == 0 else int(round(real_ratio * batch_size))
    if num_real > 0 and len(real) == 0:
        raise ValueError("real buffer is empty but real_ratio > 0")
    parts = []
    if num_real > 0:
        parts.append(real.sample(num_real, rng))
    if batch_size - num_real > 0:
        parts.append(model.sample(batch_size - num_real, rng))
    tensors = {
        name: torch.as_tensor(np.concatenate([part[name] for part in parts]), device=device)
        for name in _FIELDS
    }
    return TransitionBatch(**tensors)
