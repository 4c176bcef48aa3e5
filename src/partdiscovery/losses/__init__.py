"""The four losses of the paper, one concept per file, as pure functions on tensors (and three that are not in it:
the learned background's, the part-usage hinge and self-training's)."""

from partdiscovery.losses.background import background_loss
from partdiscovery.losses.contrastive import contrastive_loss, draw_positive_images
from partdiscovery.losses.equivariance import equivariance_loss
from partdiscovery.losses.feature import feature_loss
from partdiscovery.losses.prototypes import part_means, soft_part_variance
from partdiscovery.losses.self_training import self_training_loss
from partdiscovery.losses.usage import usage_loss
from partdiscovery.losses.visual import rgb_to_lab, visual_consistency_loss

__all__ = [
    "background_loss",
    "contrastive_loss",
    "draw_positive_images",
    "equivariance_loss",
    "feature_loss",
    "part_means",
    "rgb_to_lab",
    "self_training_loss",
    "soft_part_variance",
    "usage_loss",
    "visual_consistency_loss",
]
