"""Training: methods (what is optimised) and the generic trainer (how)."""

from partdiscovery.training.method import METHODS, ContrastiveReconstruction, create_method, list_methods
from partdiscovery.training.scops import SCOPS
from partdiscovery.training.trainer import Trainer

__all__ = ["METHODS", "ContrastiveReconstruction", "SCOPS", "Trainer", "create_method", "list_methods"]
