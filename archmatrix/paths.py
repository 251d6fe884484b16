"""Where archmatrix's own files live: the recipes it carries, the cache it keeps."""

from __future__ import annotations

import os
from pathlib import Path

# The image recipes, inits, kernel fragments, container and lab host recipes: package data, in the wheel too.
RECIPES = Path(__file__).resolve().parent / "recipes"


def cache_root() -> Path:
    """$XDG_CACHE_HOME/archmatrix, else ~/.cache/archmatrix."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "archmatrix"


def default_cache_dir() -> Path:
    """The image cache: <cache root>/images."""
    return cache_root() / "images"


def default_nova_dir() -> Path:
    """Nova's environments, one per version (archmatrix/nova/environment.py): <cache root>/nova."""
    return cache_root() / "nova"
