"""StochLite quadruped hardware layer: Kondo B3M servo bus, servo driver, gait controller, sim."""
