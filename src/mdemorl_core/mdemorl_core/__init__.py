"""M-DeMoRL algorithm library: SAC, probabilistic ensemble, DMD-MPC, tasks. Pure Python + torch, no ROS.

Importing the package registers this project's Gymnasium tasks (``Leg2R-v0``, ``StochLite-v0``);
registration loads neither MuJoCo nor PyBullet.
"""

from mdemorl_core import envs as envs

__version__ = "0.1.0"
