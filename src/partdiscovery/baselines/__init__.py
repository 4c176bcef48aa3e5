"""Baselines scored by the same evaluation as the method: k-means on φ features (more in issue 4)."""

from partdiscovery.baselines.kmeans import fit_kmeans, predict_kmeans

__all__ = ["fit_kmeans", "predict_kmeans"]
