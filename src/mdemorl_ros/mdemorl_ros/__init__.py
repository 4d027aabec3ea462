"""Robot-independent ROS pieces of mdemorl: topics and QoS, node parameters, the loop timing and
real-time set-up, the node runner, the controller<->trainer protocol records and the test harness."""
