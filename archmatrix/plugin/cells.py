"""Tests that take the `cell` fixture run once per (host, guest arch, accelerator), with ids such as
`aarch64-tcg` (several hosts: `rack1-aarch64-tcg`), from --arch/--accel, else an `arches` marker, else the
catalog; cells whose image is ready and that take longest go first."""

from __future__ import annotations

import json

import pytest

from archmatrix.core.arches import ARCHES, arch_named, default_arches
from archmatrix.core.checks import SSH_CHECKS
from archmatrix.core.plan import CellKey
from archmatrix.images.cache import ImageCache
from archmatrix.plugin.reporter import CELL_PROPERTY
from archmatrix.plugin.state import state_of
from archmatrix.run.order import build_rank, cells_in_order


def pytest_generate_tests(metafunc) -> None:
    if "cell" not in metafunc.fixturenames:
        return
    state = state_of(metafunc.config)
    settings = state.settings
    marker = metafunc.definition.get_closest_marker("arches")
    if settings.arches:
        arches = list(settings.arches)
    elif marker:
        arches = [arch_named(name).name for name in marker.args]
    else:
        arches = default_arches()
    # One host: ids stay <arch>-<accel>; several: <label>-<arch>-<accel>, so -k LABEL picks a host.
    several = len(state.specs) > 1
    writers = (False, True) if settings.nova else (False,)  # the harness's own domain; Nova's driver's (--nova)
    keys = [CellKey(arch, accel, spec.label, nova) for spec in state.specs for arch in arches
            for accel in settings.accels for nova in writers]
    metafunc.parametrize("cell", [pytest.param(key, id=key.test_id(several),
                                               marks=pytest.mark.xdist_group(key.test_id(True))) for key in keys])


def cell_of(item) -> CellKey | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("cell") if callspec is not None else None


def check_name(item) -> str:
    """test_guest_arch -> guest-arch: the check's name in the matrix."""
    return item.originalname.removeprefix("test_").replace("_", "-")


@pytest.hookimpl(trylast=True)  # after -k and -m deselected what they do not want
def pytest_collection_modifyitems(config, items) -> None:
    """The cells' tests change places among themselves (see cells_in_order); other tests keep their order. In a
    run of one process, the images built from source start building in the background (archmatrix/run/prebuild.py);
    under xdist the controller starts them (pytest_xdist_node_collection_finished)."""
    slots = [index for index, item in enumerate(items) if cell_of(item) is not None]
    if not slots:
        return
    state = state_of(config)
    state.wants_ssh = any(check_name(items[index]) in SSH_CHECKS for index in slots)
    settings = state.settings
    cache = ImageCache(settings.image_cache)

    def rank(arch: str) -> int:
        ready = arch in settings.user_images or not ARCHES[arch].has_builtin_image or cache.is_cached(ARCHES[arch])
        return build_rank(ARCHES[arch], ready)

    keys = list(dict.fromkeys(cell_of(items[i]) for i in slots))
    order = {key: rank for rank, key in enumerate(cells_in_order(keys, settings, state.specs, rank))}
    cells = sorted((items[index] for index in slots), key=lambda item: order[cell_of(item)])
    for index, item in zip(slots, cells, strict=True):
        items[index] = item
    if getattr(config, "workerinput", None) is None and not config.option.collectonly:
        state.build_ahead(key.arch for key in sorted(keys, key=order.__getitem__))  # longest first, as the cells go


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids) -> None:
    """xdist's controller: the workers' collection names the cells; their source-built images start building."""
    state_of(node.config).build_ahead(arches_in(ids))


def arches_in(test_ids) -> list[str]:
    """The guest arches of cell tests' ids: `...test_boot[rack1-ppc64-tcg-nova]@...` -> ppc64."""
    arches = []
    for test_id in test_ids:
        start, end = test_id.find("["), test_id.rfind("]")
        words = test_id[start + 1:end].split("-") if 0 <= start < end else []
        accel = next((index for index, word in enumerate(words) if word in ("tcg", "kvm")), None)
        if accel:
            arches.append(words[accel - 1])
    return [arch for arch in dict.fromkeys(arches) if arch in ARCHES]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item) -> None:
    cell = cell_of(item)
    if cell is not None:
        item.user_properties.append((CELL_PROPERTY, json.dumps({"host": cell.host, "arch": cell.arch,
                                                                 "accel": cell.accel, "nova": cell.nova,
                                                                 "check": check_name(item)})))
