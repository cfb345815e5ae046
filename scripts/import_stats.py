"""Count the package's internal imports: at file tops, inside functions, and the import circles between modules.

Usage: ``python scripts/import_stats.py [--package vpd_lite] [--edges]``. Reads the source with ``ast`` (imports
nothing). Each import statement counts once per
module it names (``from vpd_lite import a, b`` counts two; ``from vpd_lite.a import x, y`` one). An import counts
as "inside a function" when it sits in a ``def`` body at any depth; every other import
of a ``vpd_lite`` module (module level, including under ``if``/``try``) counts as "at the top". A circle is a
strongly connected set of two or more modules in the graph of module-level and function-level imports together.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(path: Path, root: Path, package: str, known: set[str]):
    """Yield (imported module, inside_function) for each import of ``package`` in the file."""
    module = module_name(path, root)
    tree = ast.parse(path.read_text(), filename=str(path))

    def visit(node: ast.AST, in_function: bool):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name == package or alias.name.startswith(package + "."):
                        yield alias.name, in_function
            elif isinstance(child, ast.ImportFrom):
                base = resolve(child, module, path.name == "__init__.py")
                if base == package or base.startswith(package + "."):
                    targets = []
                    for alias in child.names:
                        candidate = f"{base}.{alias.name}"
                        target = candidate if candidate in known else base
                        if target not in targets:
                            targets.append(target)
                    for target in targets:
                        yield target, in_function
            yield from visit(child, inner)

    yield from visit(tree, False)


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of two or more modules (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10_000)

    def connect(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", default="vpd_lite", help="the package folder (default: vpd_lite)")
    parser.add_argument("--edges", action="store_true", help="also print every function-level import")
    args = parser.parse_args(argv)
    root = Path(args.package).resolve()
    files = sorted(root.rglob("*.py"))
    known = {module_name(f, root) for f in files}
    top = inside = 0
    graph: dict[str, set[str]] = {m: set() for m in known}
    for f in files:
        me = module_name(f, root)
        for target, in_function in imports(f, root, root.name, known):
            # an import of a package's name counts as an edge to that package's __init__
            if target not in known:
                continue
            if in_function:
                inside += 1
                if args.edges:
                    print(f"inside a function: {me} -> {target}")
            else:
                top += 1
            if target != me and not me.startswith(target + "."):
                graph[me].add(target)
    found = circles(graph)
    print(f"modules: {len(files)}")
    print(f"imports of {root.name} modules at the top of files: {top}")
    print(f"imports of {root.name} modules inside functions: {inside}")
    print(f"import circles: {len(found)}")
    for group in found:
        print("  circle: " + " <-> ".join(group))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
