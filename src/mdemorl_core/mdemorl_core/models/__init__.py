"""Probabilistic dynamics models (ensemble) and their normalisers."""
