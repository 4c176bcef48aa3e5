"""φ features at the image's own aspect ratio, with the padding cells cropped off."""

from __future__ import annotations

import numpy as np
from PIL import Image

from partdiscovery.foreground import border_cells, image_features
from partdiscovery.foreground.features import feature_input_size


def test_feature_input_size_keeps_the_aspect_in_multiples_of_16():
    assert feature_input_size(256, 128, 256) == (256, 128)
    assert feature_input_size(100, 300, 128) == (48, 128)
    assert feature_input_size(5, 500, 64) == (16, 64)


def test_image_features_shape_and_padding(phi):
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (60, 120, 3), dtype=np.uint8))
    padded = image_features(phi, image, 128)
    plain = image_features(phi, image, 128, pad=0)
    assert padded.shape == plain.shape == (64 // 8, 128 // 8, phi.channels)
    assert padded.dtype == np.float32 and not np.allclose(padded, plain)


def test_border_cells():
    border = border_cells(4, 5)
    assert border.sum() == 4 * 5 - 2 * 3 and not border[1:-1, 1:-1].any()


def test_image_features_of_a_panorama(phi):
    """A 20:1 photo's short side rounds to 16 pixels, less than the reflect padding: padded all the same."""
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (100, 2000, 3), dtype=np.uint8))
    features = image_features(phi, image, 256)
    assert features.shape == (16 // 8, 256 // 8, phi.channels) and np.isfinite(features).all()


def test_the_cells_cropped_off_are_the_paddings():
    """With a φ that only averages 8 x 8 blocks, the padded image's cells left after the crop are exactly the plain
    image's: a crop shifted by one cell (or only on one axis) would read the reflected padding."""
    import torch

    phi = torch.nn.AvgPool2d(8)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (60, 120, 3), dtype=np.uint8))
    padded, plain = image_features(phi, image, 128), image_features(phi, image, 128, pad=0)
    assert padded.shape == plain.shape == (8, 16, 3)
    np.testing.assert_allclose(padded, plain, atol=1e-6)
