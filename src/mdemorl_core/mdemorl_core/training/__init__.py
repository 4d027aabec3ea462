"""Training infrastructure: the epoch loop, evaluation, checkpoints and the progress log."""
