"""The package layout: dependencies point one way, and there is one window assembly and one TFLite wrapper.

Imports are read from the source (module level and inside functions alike), so a circle hidden behind a
function-local import is still found.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Import name -> folder.
PACKAGES = {"kerasdance": ROOT / "kerasdance", "kerasdance_edge": ROOT / "edge"}


def _modules() -> dict[str, Path]:
    out = {}
    for name, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join((name, *parts))] = path
    return out


def _imports(path: Path, module: str, known: dict[str, Path]) -> set[str]:
    """The project modules ``module`` imports (``from a.b import c`` counts as ``a.b.c`` when that is a module)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: the package, node.level - 1 levels up
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for n in names:
            while n and n not in known:
                n = n.rpartition(".")[0]
            if n and n != module:
                found.add(n)
    return found


def _graph() -> dict[str, set[str]]:
    known = _modules()
    return {m: _imports(p, m, known) for m, p in known.items()}


def _raw_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names.add(node.module or "")
    return names


def test_no_import_circle():
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if n.startswith(m + ".") or m.startswith(n + "."):  # a package and its own submodules
                continue
            if state.get(n) == 1:
                pytest.fail("import circle: " + " -> ".join(stack[stack.index(n):] + [n]))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_dependencies_point_one_way():
    """The library never imports the device runtime, the scripts or the benchmarks; the device never imports
    training, export or TensorFlow."""
    for module, path in _modules().items():
        top = {n.split(".")[0] for n in _raw_imports(path)}
        assert not top & {"tools", "benchmarks", "edge"}, f"{module} imports {top & {'tools', 'benchmarks', 'edge'}}"
        if module.startswith("kerasdance."):
            assert "kerasdance_edge" not in top, f"{module} imports the device runtime"
        else:
            banned = {n for n in _raw_imports(path) if n.split(".")[0] in ("tensorflow", "tf_keras", "keras")
                      or n.startswith(("kerasdance.training", "kerasdance.export", "kerasdance.models"))}
            assert not banned, f"{module} imports {banned}"


def test_one_window_assembly_and_one_tflite_wrapper():
    """Only ``preprocess.make_window`` puts crops and the motion channel together; only ``kerasdance.litert``
    touches a TFLite interpreter."""
    for module, path in _modules().items():
        text = path.read_text()
        if module != "kerasdance.data.preprocess":
            assert "add_motion(crop_frames" not in text.replace("pp.", ""), module
        if module != "kerasdance.litert":
            assert "Interpreter(" not in text and "interpreter.invoke" not in text, module
