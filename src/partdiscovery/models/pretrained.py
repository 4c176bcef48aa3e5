"""Downloading pretrained weights, or failing with one clear message when that is impossible."""

from __future__ import annotations

import contextlib
import urllib.error

from partdiscovery.errors import WeightsUnavailableError


@contextlib.contextmanager
def download_guard(what: str, option: str):
    """Turn network/cache failures while fetching ``what`` into a :class:`WeightsUnavailableError`
    that says how to pass a local copy through config key ``option``."""
    try:
        yield
    except WeightsUnavailableError:
        raise
    except (OSError, urllib.error.URLError, RuntimeError, ValueError) as e:
        # huggingface_hub, torch.hub and urllib raise many types; all mean "could not get the file".
        detail = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise WeightsUnavailableError(
            f"{what} are not cached and could not be downloaded ({detail}). "
            f"Download them on a machine with internet and pass the file with {option}=/path/to/file, "
            "or use --no-pretrained for random weights."
        ) from None
