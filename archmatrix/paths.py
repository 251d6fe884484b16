"""Where archmatrix's own files live: the recipes it carries, the cache it keeps."""

from __future__ import annotations

import os
from pathlib import Path

# The image recipes, inits, kernel fragments, container and lab host recipes: package data, in the wheel too.
RECIPES = Path(__file__).resolve().parent / "recipes"


def default_cache_dir() -> Path:
    """The image cache: $XDG_CACHE_HOME/archmatrix/images, else ~/.cache/archmatrix/images."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "archmatrix" / "images"
