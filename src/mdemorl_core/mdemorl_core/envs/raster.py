"""A tiny dependency-free RGB canvas (numpy only) for headless ``render_mode="rgb_array"``.

Drawing works in world coordinates (m) through a fixed view box, so planar robots can be drawn
without OpenGL. Shapes are anti-aliasing-free but cheap: each is one vectorised distance test over
the pixels of its bounding box only (a frame of a few hundred shapes renders in milliseconds).
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

    def _window(
        self, x_low: float, x_high: float, z_low: float, z_high: float
    ) -> tuple[slice, slice]:
        """(rows, columns) of the pixels whose centres can lie in the world box, one pixel of
        margin; the distance tests then look at those pixels only."""
        height, width = self.image.shape[:2]
        column = (np.array([x_low, x_high]) - self._x_centre) * self._pixels_per_m + 0.5 * width
        row = 0.5 * height - (np.array([z_high, z_low]) - self._z_centre) * self._pixels_per_m
        columns = slice(max(int(column[0]) - 1, 0), min(int(np.ceil(column[1])) + 1, width))
        rows = slice(max(int(row[0]) - 1, 0), min(int(np.ceil(row[1])) + 1, height))
        return rows, columns

    def _paint(self, window: tuple[slice, slice], mask: np.ndarray, color: Color) -> None:
        self.image[window][mask] = np.asarray(color, dtype=np.uint8)

    def segment(self, start: np.ndarray, end: np.ndarray, width_m: float, color: Color) -> None:
        """Thick line from start [2] to end [2] (world m), width in m (at least one pixel)."""
        start_x, start_z = float(start[0]), float(start[1])
        dx, dz = float(end[0]) - start_x, float(end[1]) - start_z
        half_width = max(0.5 * width_m, 0.75 / self._pixels_per_m)
        window = self._window(
            min(start_x, start_x + dx) - half_width,
            max(start_x, start_x + dx) + half_width,
            min(start_z, start_z + dz) - half_width,
            max(start_z, start_z + dz) + half_width,
        )
        world_x, world_z = self._world_x[window], self._world_z[window]
        length_sq = max(dx * dx + dz * dz, 1e-12)
        along = ((world_x - start_x) * dx + (world_z - start_z) * dz) / length_sq
        along = np.clip(along, 0.0, 1.0)
        distance_sq = (world_x - start_x - along * dx) ** 2 + (world_z - start_z - along * dz) ** 2
        self._paint(window, distance_sq <= half_width**2, color)

    def polyline(self, points: np.ndarray, width_m: float, color: Color) -> None:
        """Connected segments through points [N x 2] (world m)."""
        for start, end in zip(points[:-1], points[1:], strict=True):
            self.segment(start, end, width_m, color)

    def disc(self, centre: np.ndarray, radius_m: float, color: Color) -> None:
        """Filled circle at centre [2] (world m)."""
        radius = max(radius_m, 1.0 / self._pixels_per_m)
        x, z = float(centre[0]), float(centre[1])
        window = self._window(x - radius, x + radius, z - radius, z + radius)
        distance_sq = (self._world_x[window] - x) ** 2 + (self._world_z[window] - z) ** 2
        self._paint(window, distance_sq <= radius**2, color)
