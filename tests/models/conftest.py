"""Fixtures of the model tests: a machine without network access."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
import torch


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No download succeeds and torch.hub's cache is empty: what a user behind a firewall sees."""

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
