"""The commands a person runs outside pytest.

  harness images build [--arch ARCH ...] [--image-cache DIR]
  harness images list  [--image-cache DIR]
"""

from __future__ import annotations

import argparse
import sys
import time

from harness.arches import ARCHES, UnknownNameError, arch_named, split_names
from harness.debian import PackageFetchError
from harness.images import ImageCache, ImageError, Recipe, default_cache_dir


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness", description="Emulation verifier helper commands.")
    commands = parser.add_subparsers(dest="command", required=True)
    images_parser = commands.add_parser("images", help="the built-in guest images")
    images = images_parser.add_subparsers(dest="action", required=True)
    builtin = [name for name, arch in ARCHES.items() if arch.has_builtin_image]
    build = images.add_parser("build", help="build (or verify the cache of) the built-in images")
    build.add_argument("--arch", action="append", default=[], metavar="ARCH[,ARCH...]",
                       help=f"arches to build, repeatable (default: all with a built-in image: {', '.join(builtin)})")
    listing = images.add_parser("list", help="show the cached image of each arch, if any")
    for sub in (build, listing):
        sub.add_argument("--image-cache", default=None, metavar="DIR",
                         help=f"image cache directory (default: {default_cache_dir()})")
    return parser


def build_images(arch_names: list[str], cache: ImageCache) -> int:
    arches = [arch_named(name) for name in arch_names] or [a for a in ARCHES.values() if a.has_builtin_image]
    recipe = Recipe.load()
    failed = 0
    for arch in arches:
        started = time.monotonic()
        try:
            image = cache.get_or_build(arch, recipe)
        except (ImageError, PackageFetchError) as error:
            print(f"{arch.name:10} FAILED  {error}", file=sys.stderr)
            failed += 1
            continue
        print(f"{arch.name:10} {time.monotonic() - started:6.1f} s  kernel {image.kernel_release}  "
              f"initrd {image.initrd_sha256[:12]}  in {cache.root}")
    return 1 if failed else 0


def list_images(cache: ImageCache) -> int:
    recipe = Recipe.load()
    for arch in ARCHES.values():
        image = cache.lookup(arch, recipe) if arch.has_builtin_image else None
        state = f"cached, kernel {image.kernel_release}" if image else (
            "not built" if arch.has_builtin_image else "no built-in image (use --image)")
        print(f"{arch.name:10} {state}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    cache = ImageCache(args.image_cache)
    try:
        if args.action == "build":
            return build_images(split_names(args.arch), cache)
        return list_images(cache)
    except UnknownNameError as error:
        print(f"harness: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
