"""Uncertainty of predictions: conformal intervals / sets and the applicability domain."""
