"""Launch files, parameters and robot descriptions of the mdemorl training graph, with a small runner for machines without ros2 launch."""
