"""Registry: name -> factory, with errors that list every valid name."""

from __future__ import annotations

import pytest

from partdiscovery.data import DATASETS
from partdiscovery.errors import PartDiscoveryError
from partdiscovery.models import BACKBONES, FEATURE_EXTRACTORS
from partdiscovery.training import METHODS
from partdiscovery.utils.registry import Registry, UnknownNameError


def make() -> Registry:
    reg: Registry = Registry("widget")

    @reg.register("beta")
    def beta(x=1):
        return ("beta", x)

    @reg.register("alpha")
    def alpha():
        return "alpha"

    return reg


def test_register_build_names_contains():
    reg = make()
    assert reg.names() == ["alpha", "beta"]  # sorted
    assert reg.build("beta", x=5) == ("beta", 5)
    assert reg.get("alpha")() == "alpha"
    assert "alpha" in reg and "gamma" not in reg


def test_unknown_name_lists_valid_names():
    reg = make()
    with pytest.raises(UnknownNameError) as info:
        reg.build("gamma")
    message = str(info.value)
    assert message == "unknown widget 'gamma'; choose one of: alpha, beta"  # plain text, not KeyError's repr
    # A mapping's KeyError, and a user's error: the CLI prints one line, library callers catch PartDiscoveryError.
    assert isinstance(info.value, KeyError) and isinstance(info.value, PartDiscoveryError)


def test_registering_twice_is_an_error():
    reg = make()
    with pytest.raises(ValueError, match="twice"):
        reg.register("alpha")(lambda: None)
    assert reg.get("alpha")() == "alpha"  # the first registration survives
    reg.register("alpha", replace=True)(lambda: "alpha 2")  # a built-in swapped, a notebook cell run again
    assert reg.get("alpha")() == "alpha 2" and reg.names() == ["alpha", "beta"]


@pytest.mark.parametrize(
    "registry, expected",
    [
        (BACKBONES, {"efficientnet_lite0", "resnet18", "resnet50", "deeplab_resnet50"}),
        (FEATURE_EXTRACTORS, {"efficientnet_lite0", "vgg19", "dino_vits8"}),
        (METHODS, {"contrastive_reconstruction"}),
        (DATASETS, {"folder"}),
    ],
)
def test_project_registries(registry, expected):
    assert expected <= set(registry.names())
    with pytest.raises(UnknownNameError) as info:
        registry.get("no_such_thing")
    for name in registry.names():
        assert name in str(info.value)
