"""Methods: what is optimised. Each registers itself in :data:`METHODS` on import."""

from partdiscovery.training.methods.base import (
    METHODS,
    FrozenFeaturesMethod,
    Method,
    create_method,
    list_methods,
)
from partdiscovery.training.methods.contrastive import ContrastiveReconstruction
from partdiscovery.training.methods.scops import SCOPS

__all__ = [
    "METHODS",
    "SCOPS",
    "ContrastiveReconstruction",
    "FrozenFeaturesMethod",
    "Method",
    "create_method",
    "list_methods",
]
