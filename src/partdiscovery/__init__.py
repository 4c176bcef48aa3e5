"""partdiscovery: unsupervised part discovery from contrastive reconstruction.

Choudhury, Laina, Rupprecht, Vedaldi. *Unsupervised Part Discovery from Contrastive Reconstruction.*
NeurIPS 2021.
"""

__version__ = "0.2.0"

from partdiscovery.evaluation.prediction import Prediction  # noqa: E402
from partdiscovery.segmenter import PartSegmenter  # noqa: E402

__all__ = ["PartSegmenter", "Prediction", "__version__"]
