from setuptools import find_packages, setup

package_name = "mdemorl_ros"

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
    description="Robot-independent ROS pieces shared by the drivers and the trainer: topic names and QoS, node parameter rules, loop timing, the node runner, the training protocol records and the multi-process test harness.",
    license="Apache-2.0",
)
