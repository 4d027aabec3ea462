"""Model-free learners (SAC) used as the outer loop."""
