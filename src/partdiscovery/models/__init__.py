"""Models: backbones for f, frozen feature extractors φ, and the part segmentation network."""

from partdiscovery.models.backbones import BACKBONES, Backbone, create_backbone, list_backbones
from partdiscovery.models.features import (
    FEATURE_EXTRACTORS,
    DenseFeatures,
    create_feature_extractor,
    feature_extractor_layers,
    list_feature_extractors,
)
from partdiscovery.models.part_net import PartOutput, PartSegmentationNet

__all__ = [
    "BACKBONES",
    "FEATURE_EXTRACTORS",
    "Backbone",
    "DenseFeatures",
    "PartOutput",
    "PartSegmentationNet",
    "create_backbone",
    "create_feature_extractor",
    "feature_extractor_layers",
    "list_backbones",
    "list_feature_extractors",
]

# Registration of the paper's networks happens on import.
import partdiscovery.models.deeplab  # noqa: F401,E402  (deeplab_resnet50)
import partdiscovery.models.paper_features  # noqa: F401,E402  (vgg19, dino_vits8)
