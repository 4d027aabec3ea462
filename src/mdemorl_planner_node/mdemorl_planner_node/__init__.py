"""ROS 2 adapters of the learning stack: the trainer node and the DMD-MPC planner service node."""
