"""partdiscovery: unsupervised part discovery from contrastive reconstruction.

Choudhury, Laina, Rupprecht, Vedaldi. *Unsupervised Part Discovery from Contrastive Reconstruction.*
NeurIPS 2021.

``from partdiscovery import PartSegmenter`` is the inference API. The package face loads it on first use
(PEP 562), so importing any module of the package (``partdiscovery.config``, the command line's parser)
does not load the network code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.29.0"

__all__ = ["PartSegmenter", "Prediction", "__version__"]

if TYPE_CHECKING:
    from partdiscovery.data.prediction import Prediction
    from partdiscovery.segmenter import PartSegmenter


def __getattr__(name: str):
    if name == "PartSegmenter":
        from partdiscovery.segmenter import PartSegmenter

        return PartSegmenter
    if name == "Prediction":
        from partdiscovery.data.prediction import Prediction

        return Prediction
    raise AttributeError(f"module 'partdiscovery' has no attribute {name!r}")
