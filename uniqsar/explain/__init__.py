"""Atom-level explanations of a run's ensemble predictions (atom occlusion)."""
