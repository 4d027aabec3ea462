"""M-DeMoRL algorithm library: SAC, probabilistic ensemble, DMD-MPC, tasks. Pure Python + torch, no ROS."""
