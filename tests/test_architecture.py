"""The house's layers, read from every module's imports: no import runs back up (docs/architecture.md).

Each part of the package (a subpackage, or a module at its top) stands on one layer. A module may import from
its own layer and the layers below it, never from one above. Every import counts: at the top of a module,
inside a function, and under TYPE_CHECKING.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "archmatrix"
PAGE = ROOT / "docs" / "architecture.md"

# From the ground up. A part is what follows "archmatrix." in a module's name, up to the next dot.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("basics", ("errors", "files", "paths", "interrupts", "inputs")),
    ("core", ("core",)),
    ("services", ("cleanup", "ssh", "report", "requirements")),
    ("images", ("images",)),
    ("guest", ("guest",)),
    ("machines", ("hosts", "nova")),
    ("run", ("options", "run")),
    ("faces", ("cli", "plugin", "scenarios", "__main__")),
)
LAYER_OF = {part: number for number, (_, parts) in enumerate(LAYERS) for part in parts}

# What core may import: nothing of archmatrix outside core, and no library that reaches a process, a
# socket, libvirt, SSH or a container (core's values and checks are pure; os.path is used, os.system is not).
CORE_NEVER = {"subprocess", "socket", "threading", "multiprocessing", "libvirt", "paramiko", "docker",
              "testcontainers", "pytest", "shutil", "tempfile"}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. archmatrix.guest.volumes
    target: str  # what it names, e.g. archmatrix.files.sha256_of or subprocess
    line: int

    @property
    def where(self) -> str:
        return f"{self.module.replace('.', '/')}.py:{self.line}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path) -> list[Import]:
    found = []
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [Import(name, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            found += [Import(name, f"{source}.{alias.name}", node.lineno) for alias in node.names]
    return found


ALL = {name: imports_of(name, path) for name, path in modules().items()}


def part_of(module: str) -> str | None:
    """archmatrix.hosts.lab -> hosts; archmatrix.files -> files; the package itself and others -> None."""
    parts = module.split(".")
    return parts[1] if parts[0] == "archmatrix" and len(parts) > 1 else None


def describe(part: str) -> str:
    number = LAYER_OF[part]
    return f"layer {number}, {LAYERS[number][0]}"


def test_every_part_of_the_package_stands_on_a_layer():
    unplaced = sorted({part_of(name) for name in ALL} - set(LAYER_OF) - {None})
    assert not unplaced, (f"archmatrix/{unplaced[0]} is on no layer: add it to LAYERS in tests/test_architecture.py "
                          f"and to the layers table of docs/architecture.md, on the lowest layer that holds "
                          f"everything it imports")


def test_no_import_runs_back_up():
    up = []
    for module, found in ALL.items():
        own = part_of(module)
        if own is None:
            continue
        for imported in found:
            target = part_of(imported.target)
            if target in LAYER_OF and LAYER_OF[target] > LAYER_OF[own]:
                up.append(f"{imported.where}: {module} ({describe(own)}) imports {imported.target} "
                          f"({describe(target)}), a layer above its own; move what it needs down to where "
                          f"both can reach it, or the module up")
    assert not up, "imports that run back up:\n" + "\n".join(up)


def test_the_parts_import_each_other_in_no_circle():
    edges: dict[str, set[str]] = {}
    for module, found in ALL.items():
        own = part_of(module)
        for imported in found:
            target = part_of(imported.target)
            if own and target in LAYER_OF and target != own:
                edges.setdefault(own, set()).add(target)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for step in edges.get(start, ()):
            if step == goal or (step not in seen and reaches(step, goal, seen | {step})):
                return True
        return False

    circles = sorted(f"{a} -> {b} -> ... -> {a}" for a in edges for b in edges[a] if reaches(b, a, {b}))
    assert not circles, "parts that import each other in a circle: " + "; ".join(circles)


def test_core_imports_only_core_and_no_io():
    wrong = []
    for module, found in ALL.items():
        if part_of(module) != "core":
            continue
        for imported in found:
            top = imported.target.split(".")[0]
            if top == "archmatrix" and part_of(imported.target) != "core":
                wrong.append(f"{imported.where}: {module} imports {imported.target}; core (layer 1) imports "
                             f"nothing of archmatrix outside core/: its values and checks are pure")
            elif top in CORE_NEVER:
                wrong.append(f"{imported.where}: {module} imports {imported.target}; core does no I/O "
                             f"(no processes, sockets, libvirt, SSH, containers): do it in a layer above and "
                             f"hand core the value")
    assert not wrong, "\n".join(wrong)


def test_only_the_pytest_layer_imports_pytest():
    wrong = [f"{imported.where}: {module} imports {imported.target}; only archmatrix/plugin/ and the packaged "
             f"scenarios know pytest (the pipeline, archmatrix/run/, runs without it)"
             for module, found in ALL.items() if part_of(module) not in ("plugin", "scenarios")
             for imported in found if imported.target.split(".")[0] in ("pytest", "_pytest", "xdist")]
    assert not wrong, "\n".join(wrong)


def test_the_nova_bridge_imports_nothing_of_archmatrix():
    """It runs in Nova's own environment, where archmatrix is not installed."""
    wrong = [f"{imported.where}: {module} imports {imported.target}"
             for module, found in ALL.items() if module.startswith("archmatrix.nova.bridge")
             for imported in found if imported.target.split(".")[0] == "archmatrix"]
    assert not wrong, "the Nova bridge runs in Nova's environment, without archmatrix:\n" + "\n".join(wrong)


def test_requirements_needs_only_the_standard_library():
    """./run reads it with the system Python, before the virtual environment exists."""
    todo, seen, outside = ["archmatrix.requirements"], set(), []
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        for imported in ALL[module]:
            top = imported.target.split(".")[0]
            if top == "archmatrix":
                target = imported.target if imported.target in ALL else imported.target.rpartition(".")[0]
                todo.append(target)
            elif top not in sys.stdlib_module_names and top != "__future__":
                outside.append(f"{imported.where}: {module} imports {imported.target}")
    assert not outside, ("archmatrix/requirements.py is read before the virtual environment exists; what it "
                         "imports must need the standard library only:\n" + "\n".join(outside))


def test_the_package_imports_nothing_from_beside_it():
    wrong = [f"{imported.where}: {module} imports {imported.target}"
             for module, found in ALL.items() for imported in found
             if imported.target.split(".")[0] in ("benchmarks", "scenarios", "tests", "conftest")]
    assert not wrong, "archmatrix imports from benchmarks/, scenarios/ or tests/, none of which is installed:\n" + (
        "\n".join(wrong))


def test_the_architecture_page_shows_these_layers():
    rows = re.findall(r"^\| (\d+) \| (\w+) \| (.+?) \|", PAGE.read_text(), re.MULTILINE)
    shown = [(int(number), name, tuple(re.findall(r"`(\w+)(?:/|\.py)`", parts))) for number, name, parts in rows]
    wanted = [(number, name, parts) for number, (name, parts) in enumerate(LAYERS)]
    assert shown == wanted, ("the layers table of docs/architecture.md and LAYERS here disagree:\n"
                             f"page: {shown}\ntest: {wanted}")


def test_the_architecture_page_links_only_to_what_is_there():
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", PAGE.read_text())
    assert links
    broken = [link for link in links if "://" in link or not (PAGE.parent / link).exists()]
    assert not broken, f"docs/architecture.md links to what is not in the tree (or off it): {broken}"
