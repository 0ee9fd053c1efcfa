"""The dependency rule of ``mono/__init__.py``, checked over every import in the package.

Each module belongs to a layer; it may import mono modules of its own layer or of a layer
listed before it, never after (function-level imports count too). Lightning is imported only by
the layer that trains, plus the DataModule.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mono"

# Layers in the order data flows; a module name matches its longest listed prefix.
LAYERS: list[tuple[str, ...]] = [
    (
        "mono",
        "mono.types",
        "mono.progress",
        "mono.model_zoo",
        "mono.config_files",
        "mono.frame_ids",
    ),
    ("mono.geometry", "mono.losses", "mono.metrics", "mono.visualize"),
    ("mono.nets",),
    ("mono.data",),
    ("mono.objective", "mono.loss_terms", "mono.checkpoint"),
    (
        "mono.module",
        "mono.model_options",
        "mono.callbacks",
        "mono.checkpointing",
        "mono.stopping",
        "mono.rng_state",
        "mono.benchmark",
        "mono.benchmark_report",
        "mono.inspect",
        "mono.inspect_synth",
    ),
    (
        "mono.evaluation",
        "mono.output_files",
        "mono.export",
        "mono.predict",
        "mono.point_cloud",
        "mono.depth_video",
        "mono.tools",
        "mono.tool_parser",
    ),
    ("mono.cli",),
]
LIGHTNING = ("pytorch_lightning", "lightning", "lightning_fabric")
LIGHTNING_ALLOWED = set(LAYERS[5]) | {"mono.data.datamodule", "mono.cli"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(name: str) -> int:
    best, layer = "", None
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            # The package itself ("mono") matches only its __init__, never as a prefix.
            matches = name == prefix or (prefix != "mono" and name.startswith(prefix + "."))
            if matches and len(prefix) > len(best):
                best, layer = prefix, i
    if layer is None:
        raise AssertionError(f"{name} is in no layer of tests/test_layers.py: add it")
    return layer


def imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


FILES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=[module_name(p) for p in FILES])
def test_no_module_imports_a_later_layer(path):
    name = module_name(path)
    own = layer_of(name)
    upward = sorted(
        imported
        for imported in imports(path)
        if imported.split(".")[0] == "mono" and _is_module(imported) and layer_of(imported) > own
    )
    assert not upward, f"{name} (layer {own}) imports later layers: {upward}"


@pytest.mark.parametrize("path", FILES, ids=[module_name(p) for p in FILES])
def test_only_the_training_layer_imports_lightning(path):
    name = module_name(path)
    uses = sorted(i for i in imports(path) if i.split(".")[0] in LIGHTNING)
    assert not uses or name in LIGHTNING_ALLOWED, f"{name} imports {uses}"


def test_nothing_imports_the_cli():
    users = [module_name(p) for p in FILES if "mono.cli" in imports(p)]
    assert users == [], users


def _is_module(name: str) -> bool:
    """``from mono.x import y`` names y, which may be a function: keep real modules only."""
    relative = Path(*name.split("."))
    root = PACKAGE.parent
    return (root / relative).with_suffix(".py").is_file() or (root / relative).is_dir()
