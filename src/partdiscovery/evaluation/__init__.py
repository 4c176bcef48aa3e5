"""Evaluation: streaming metrics, scoring of predictions and the dataset protocols."""

from partdiscovery.evaluation.evaluate import read_prediction_dir, score_pixels, write_predictions
from partdiscovery.evaluation.metrics import ContingencyTable, PartMetrics

__all__ = ["ContingencyTable", "PartMetrics", "read_prediction_dir", "score_pixels", "write_predictions"]
