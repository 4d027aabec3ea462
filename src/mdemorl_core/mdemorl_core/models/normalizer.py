"""Per-dimension standardisation ``(x - mean) / std`` with statistics stored as module buffers."""

from __future__ import annotations

import torch
from torch import nn

# Dimensions with (almost) no spread are left unscaled instead of being blown up by 1 / std.
_MIN_STD = 1e-6


class Normalizer(nn.Module):
    """Standardises the last dimension (size ``D``) of its inputs; identity until :meth:`fit`."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, dim: int) -> None:
        super().__init__()
        if dim < 1:
            raise ValueError(f"normalizer dim must be >= 1, got {dim}")
        self.dim = dim
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def fit(self, data: torch.Tensor) -> None:
        """Set mean and std from ``data`` of shape ``N x D`` (N >= 1)."""
        if data.ndim != 2 or data.shape[1] != self.dim or data.shape[0] < 1:
            raise ValueError(f"normalizer data must be [N>=1, {self.dim}], got {tuple(data.shape)}")
        std = data.std(dim=0, unbiased=False)
        self.mean.copy_(data.mean(dim=0))
        self.std.copy_(torch.where(std < _MIN_STD, torch.ones_like(std), std))

    def normalize(self, data: torch.Tensor) -> torch.Tensor:
        """``... x D`` -> standardised ``... x D``."""
        return (data - self.mean) / self.std

    def denormalize(self, data: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`normalize`."""
        return data * self.std + self.mean
