"""DMD-MPC planner and the horizon / batch schedules."""
