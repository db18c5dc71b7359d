"""The shape of the code the next engineer reads: lines in ui/tabs/, the longest
functions in ui/, and import circles among the studio's own modules.

    python -m bench.code_shape [ROOT]
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGES = ("ui", "tasks", "pipelines")


def modules(root: Path) -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The studio modules `name` imports anywhere: at the top, inside functions (imports
    put there to break a circle), and for type checking only."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module if node.level == 0 else ".".join(name.split(".")[:-node.level] + [node.module])
            found |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return {module for module in found if module in known and module != name}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return groups


def longest_functions(root: Path, most: int = 3) -> list[tuple[int, str]]:
    found = []
    for path in (root / "ui").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append((node.end_lineno - node.lineno + 1, f"{path.relative_to(root)}:{node.name}"))
    return sorted(found, reverse=True)[:most]


def main(root: Path) -> None:
    known = modules(root)
    tab_lines = sum(len(path.read_text().splitlines()) for path in (root / "ui" / "tabs").glob("*.py"))
    print(f"lines in ui/tabs/: {tab_lines}")
    for length, name in longest_functions(root):
        print(f"longest in ui/: {length} lines  {name}")
    graph = {name: imports(name, path, known) for name, path in known.items()}
    found = circles(graph)
    print(f"import circles: {len(found)}" + "".join(f"\n  {' <-> '.join(group)}" for group in found))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve())
