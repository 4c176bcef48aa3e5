"""Plugins: modules named by an entry point or PARTDISCOVERY_PLUGINS are imported before a command runs."""

from __future__ import annotations

import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from partdiscovery.baselines import BASELINES
from partdiscovery.cli.main import main
from partdiscovery.errors import PartDiscoveryError
from partdiscovery.models import BACKBONES
from partdiscovery.utils import plugins
from partdiscovery.utils.plugins import ENTRY_POINT_GROUP, ENVIRONMENT_VARIABLE, load_plugins, plugin_modules

TINY = ["data.input_size=48", "model.decoder_channels=16", "train.batch_size=2"]
PLUGIN = """
from partdiscovery.baselines import BASELINES
from partdiscovery.models import BACKBONES

BASELINES.register("kmeans_of_a_plugin")(BASELINES.get("kmeans"))
"""


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """A one-file plugin on the path, named by the environment variable; the registry is restored afterwards."""
    (tmp_path / "my_partdiscovery_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, " my_partdiscovery_plugin , ")
    monkeypatch.setattr(BASELINES, "_entries", dict(BASELINES._entries))
    yield "my_partdiscovery_plugin"
    sys.modules.pop("my_partdiscovery_plugin", None)  # the next test imports (and registers) it afresh


def test_the_environment_variable_names_modules_that_are_imported(plugin, monkeypatch):
    assert (plugin, ENVIRONMENT_VARIABLE) in plugin_modules()
    assert plugin in load_plugins() and "kmeans_of_a_plugin" in BASELINES


def test_an_installed_packages_entry_point_is_imported_before_the_environment_variables(plugin, monkeypatch):
    """The other half of the header: a plugin package's entry point (none is installed here, so one is faked)."""
    point = EntryPoint("mine", f"{plugin}:unused", ENTRY_POINT_GROUP)
    monkeypatch.setattr(plugins, "entry_points", lambda group: [point] if group == ENTRY_POINT_GROUP else [])
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "json")
    assert plugin_modules() == [(plugin, "entry point 'mine'"), ("json", ENVIRONMENT_VARIABLE)]
    assert load_plugins() == [plugin, "json"] and "kmeans_of_a_plugin" in BASELINES


def test_the_command_line_knows_a_plugins_names(plugin, capsys):
    with pytest.raises(SystemExit):
        main(["baseline", "--help"])
    assert "kmeans_of_a_plugin" in capsys.readouterr().out


def test_a_plugin_that_cannot_be_imported_is_one_line_naming_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "no_such_plugin_module")
    with pytest.raises(
        PartDiscoveryError, match=r"plugin 'no_such_plugin_module' \(from PARTDISCOVERY_PLUGINS\)"
    ):
        load_plugins()
    (tmp_path / "broken_plugin.py").write_text(
        "import os\n\nraise RuntimeError('no licence key\\nsecond line')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "broken_plugin")
    with pytest.raises(
        PartDiscoveryError
    ) as info:  # the plugin's own file and line, the message's first line
        load_plugins()
    assert str(info.value).endswith(f"(RuntimeError: no licence key) at {tmp_path / 'broken_plugin.py'}:3")
    # The command line says so and goes on: --help still works without the plugin.
    with pytest.raises(SystemExit) as exit_info:
        main(["baseline", "--help"])
    assert exit_info.value.code == 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("partdiscovery: warning: plugin 'broken_plugin'") and err.endswith(
        "going on without it"
    )
    sys.modules.pop("broken_plugin", None)


def test_the_readmes_plugin_trains_and_predicts_from_the_command_line(tmp_path, monkeypatch, tiny_dataset):
    """The README's example plugin (a timm backbone for f), as a user would run it: named by the environment
    variable, trained and used by the command line."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    code = readme.split("<!-- plugin-example -->", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "myplugin.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "myplugin")
    monkeypatch.setattr(BACKBONES, "_entries", dict(BACKBONES._entries))
    try:
        run = tmp_path / "run"
        train = f"train --data {tiny_dataset} --out {run} --parts 3 --steps 2 --no-pretrained --device cpu --quiet"
        assert main([*train.split(), "model.backbone=convnext_atto", *TINY]) == 0
        out = tmp_path / "seg"
        images = tiny_dataset / "images"
        assert (
            main(["predict", "--run", str(run), "--images", str(images), "--out", str(out), "--quiet"]) == 0
        )
        assert len(list((out / "labels").glob("*.png"))) == len(list(images.iterdir()))
    finally:
        sys.modules.pop("myplugin", None)
