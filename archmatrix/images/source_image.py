"""A built-in image built from Debian's sources: a kernel from linux-source with Debian's cross compiler, and a
static /init, or busybox and dropbear built static, for the arches no Debian release ships."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from archmatrix.cleanup.scratch import ScratchArea
from archmatrix.core.arch import Arch, SourceKernel, SourceUserland, StaticInit
from archmatrix.images.kernel_build import (
    REPRODUCIBLE_ENV,
    build_kernel,
    compile_init,
    fragment_text,
    init_command,
    require_toolchain,
    source_tree,
    toolchain_versions,
)
from archmatrix.images.recipe import RECIPE_DIR, Recipe
from archmatrix.images.userland_build import build_static_userland


class SourceBuild:
    """`apt(debian_arch, release)` gives a private apt; `root` is the cache (sources, logs, scratch)."""

    def __init__(self, root: Path, apt):
        self.root = root
        self._apt = apt
        self.scratch = ScratchArea(root)

    def build(self, arch: Arch, kernel: SourceKernel, recipe: Recipe, workdir: Path, say,
              key: str) -> tuple[dict, dict, dict]:
        """The manifest's fields, no package members, and the files compiled for the guest."""
        assert arch.image is not None and isinstance(arch.image.init, StaticInit | SourceUserland)
        require_toolchain(arch.name, arch.image)
        log_path = self.root / "logs" / f"{arch.name}-{key}.log"
        log_path.write_text(f"# building the {arch.name} image, recipe key {key}\n")
        say(f"building from source; log: {log_path}")
        with self.scratch.lock("kernel-source"):
            host_arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                                       check=True).stdout.strip()
            apt = self._apt(host_arch, None)
            apt.update()
            tree, source_package = source_tree(self.root / "src", self.scratch, apt, say)
        kernel_file, release = build_kernel(arch.name, kernel, tree, workdir, log_path, say)
        os.replace(kernel_file, workdir / "kernel")
        built: dict[str, bytes] = {}
        userland: dict = {}
        if isinstance(arch.image.init, SourceUserland):
            files, userland = build_static_userland(arch.name, kernel.cross_prefix, arch.image.init.cflags,
                                                    self.root, workdir, log_path, say)
            built.update(files)
        for path, source in recipe.compiled():
            output = workdir / f"compiled-{len(built)}"
            compile_init(arch.name, kernel, arch.image.init.cflags, RECIPE_DIR / source, output, log_path, say)
            built[path] = output.read_bytes()
        config = (workdir / "build" / ".config").read_bytes()
        manifest = {
            "kernel_release": release,
            "packages": [source_package.identity()],
            "kernel_source": source_package.identity(),
            "toolchain": toolchain_versions(arch.image),
            "config_fragment": f"images/kernels/{kernel.fragment}",
            "fragment_sha256": hashlib.sha256(fragment_text(kernel)).hexdigest(),
            "config_sha256": hashlib.sha256(config).hexdigest(),
            "build_commands": [
                f"make ARCH={kernel.make_arch} CROSS_COMPILE={kernel.cross_prefix} "
                f"KCONFIG_ALLCONFIG=<kernel/configs/tiny.config + fragment> allnoconfig",
                f"make ARCH={kernel.make_arch} CROSS_COMPILE={kernel.cross_prefix} {kernel.target}",
                "environment: " + " ".join(f"{k}={v}" for k, v in REPRODUCIBLE_ENV.items()),
                *(" ".join(init_command(kernel, arch.image.init.cflags, source, path))
                  for path, source in recipe.compiled()),
            ],
            "compiled_sha256": {path: hashlib.sha256(data).hexdigest() for path, data in built.items()},
            **({"userland": userland} if userland else {}),
            "build_log": str(log_path),
        }
        return manifest, {}, built
