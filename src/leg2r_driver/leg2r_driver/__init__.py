"""Hardware layer of the 2R leg: MIT-protocol CAN motor driver, BNO055 IMU, 500 Hz torque controller and a simulated robot with the same topics."""
