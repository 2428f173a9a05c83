"""The package's layering, read from its source (docs/architecture.md): imports go one way, down the
layers; none form a cycle; they sit at the top of each module (a few optional-dependency paths
excepted); and no underscore name crosses a module boundary."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "brushwork"

# Lower rank = lower layer. A module may import only from its own rank or below.
LAYERS = [
    ("brushwork.errors", "brushwork.version", "brushwork.files", "brushwork.options", "brushwork.progress",
     "brushwork.runtime", "brushwork.distributed"),
    ("brushwork.imaging",),
    ("brushwork.features",),
    ("brushwork.losses",),
    ("brushwork.nets",),
    ("brushwork.models", "brushwork.presets"),
    ("brushwork.methods",),
    ("brushwork.training",),
    ("brushwork.video", "brushwork.server"),
    ("brushwork.cli",),
    ("brushwork",),  # the package's public surface re-exports from every layer
]
MAX_IMPORTS_IN_FUNCTIONS = 15


def rank(module: str) -> int:
    best = None
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (i, len(prefix))
    assert best is not None, f"{module} is in no layer: add it to LAYERS and docs/architecture.md"
    return best[0]


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def internal_imports(name: str, path: Path, known: dict[str, Path]):
    """(imported module, imported name or None, line, inside a function) for each brushwork import."""
    tree = ast.parse(path.read_text())
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}

    def in_function(node):
        while node in parents:
            node = parents[node]
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                return True
        return False

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: use absolute imports"
            if not (node.module or "").startswith("brushwork"):
                continue
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                if submodule in known:
                    yield submodule, None, node.lineno, in_function(node)
                else:
                    yield node.module, alias.name, node.lineno, in_function(node)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("brushwork"):
                    yield alias.name, None, node.lineno, in_function(node)


@pytest.fixture(scope="module")
def graph():
    known = modules()
    return known, {name: list(internal_imports(name, path, known)) for name, path in known.items()}


def test_imports_go_down_the_layers(graph):
    _, imports = graph
    upward = [f"{name} (layer {rank(name)}) imports {target} (layer {rank(target)}), line {line}"
              for name, found in imports.items() for target, _, line, _ in found if rank(target) > rank(name)]
    assert not upward, "\n".join(upward)


def test_no_import_cycles(graph):
    known, imports = graph
    edges = {name: {t for t, _, _, _ in found if t in known and t != name} for name, found in imports.items()}
    # Importing a submodule runs its package's __init__ first: a package's own re-exports are not a cycle.
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for name in sorted(edges):
        if name not in state:
            visit(name)


def test_imports_sit_at_the_top(graph):
    _, imports = graph
    inside = sorted({f"{name}:{line}" for name, found in imports.items()
                     for _, _, line, in_function in found if in_function})
    # Only paths that need an optional dependency (fastapi for the server) import inside functions.
    assert len(inside) <= MAX_IMPORTS_IN_FUNCTIONS, "\n".join(inside)


def test_no_private_name_crosses_modules(graph):
    _, imports = graph
    private = [f"{name}:{line} imports {target}.{imported}" for name, found in imports.items()
               for target, imported, line, _ in found
               if imported is not None and imported.startswith("_") and not imported.startswith("__")]
    assert not private, "\n".join(private)
