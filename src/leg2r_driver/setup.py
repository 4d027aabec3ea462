from glob import glob

from setuptools import find_packages, setup

package_name = "leg2r_driver"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/config", glob("config/*.yaml")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="mdemorl maintainers",
    maintainer_email="maintainers@mdemorl.dev",
    description="Hardware layer of the 2R leg: MIT-protocol CAN motor driver, BNO055 IMU, 500 Hz torque controller and a simulated robot with the same topics.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "motor_driver_node = leg2r_driver.motor_driver_node:main",
            "imu_node = leg2r_driver.imu_node:main",
            "torque_controller_node = leg2r_driver.torque_controller_node:main",
            "sim_robot_node = leg2r_driver.sim_robot_node:main",
        ],
    },
)
