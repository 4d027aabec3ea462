from setuptools import find_packages, setup

package_name = "stochlite_driver"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="mdemorl maintainers",
    maintainer_email="maintainers@mdemorl.dev",
    description="Hardware layer of the StochLite quadruped: Kondo B3M servo protocol on RS-485, the servo driver with its safety layer, the gait controller and a simulated robot with the same topics.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "servo_driver_node = stochlite_driver.servo_driver_node:main",
            "stochlite_sim_node = stochlite_driver.stochlite_sim_node:main",
            "gait_controller_node = stochlite_driver.gait_controller_node:main",
            "robot_description_node = stochlite_driver.robot_description_node:main",
        ],
    },
)
