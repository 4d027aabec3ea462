"""A tiny dependency-free RGB canvas (numpy only) for headless ``render_mode="rgb_array"``.

Drawing works in world coordinates (m) through a fixed view box, so planar robots can be drawn
without OpenGL. Shapes are anti-aliasing-free but cheap: each is one vectorised distance test.
"""

from __future__ import annotations

import numpy as np

Color = tuple[int, int, int]


class Canvas:
    """An H x W x 3 uint8 image showing the world rectangle [x_min, x_max] x [z_min, z_max]."""

    def __init__(
        self,
        width: int,
        height: int,
        x_range: tuple[float, float],
        z_range: tuple[float, float],
        background: Color = (245, 245, 245),
    ) -> None:
        if width < 8 or height < 8:
            raise ValueError(f"Canvas size must be at least 8x8, got {width}x{height}")
        if not (x_range[0] < x_range[1] and z_range[0] < z_range[1]):
            raise ValueError(f"Canvas ranges must be increasing, got {x_range}, {z_range}")
        self.image = np.empty((height, width, 3), dtype=np.uint8)
        self.image[:] = np.asarray(background, dtype=np.uint8)
        self._pixels_per_m = min(
            width / (x_range[1] - x_range[0]), height / (z_range[1] - z_range[0])
        )
        self._x_centre = 0.5 * (x_range[0] + x_range[1])
        self._z_centre = 0.5 * (z_range[0] + z_range[1])
        columns, rows = np.meshgrid(np.arange(width), np.arange(height))
        # World coordinates of every pixel centre, H x W each.
        self._world_x = (columns + 0.5 - 0.5 * width) / self._pixels_per_m + self._x_centre
        self._world_z = (0.5 * height - rows - 0.5) / self._pixels_per_m + self._z_centre

    def _paint(self, mask: np.ndarray, color: Color) -> None:
        self.image[mask] = np.asarray(color, dtype=np.uint8)

    def segment(self, start: np.ndarray, end: np.ndarray, width_m: float, color: Color) -> None:
        """Thick line from start [2] to end [2] (world m), width in m (at least one pixel)."""
        start_x, start_z = float(start[0]), float(start[1])
        dx, dz = float(end[0]) - start_x, float(end[1]) - start_z
        length_sq = max(dx * dx + dz * dz, 1e-12)
        along = ((self._world_x - start_x) * dx + (self._world_z - start_z) * dz) / length_sq
        along = np.clip(along, 0.0, 1.0)
        distance_sq = (self._world_x - start_x - along * dx) ** 2 + (
            self._world_z - start_z - along * dz
        ) ** 2
        half_width = max(0.5 * width_m, 0.75 / self._pixels_per_m)
        self._paint(distance_sq <= half_width**2, color)

    def polyline(self, points: np.ndarray, width_m: float, color: Color) -> None:
        """Connected segments through points [N x 2] (world m)."""
        for start, end in zip(points[:-1], points[1:], strict=True):
            self.segment(start, end, width_m, color)

    def disc(self, centre: np.ndarray, radius_m: float, color: Color) -> None:
        """Filled circle at centre [2] (world m)."""
        radius = max(radius_m, 1.0 / self._pixels_per_m)
        distance_sq = (self._world_x - float(centre[0])) ** 2 + (
            self._world_z - float(centre[1])
        ) ** 2
        self._paint(distance_sq <= radius**2, color)
