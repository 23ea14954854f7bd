"""Which functions read each parameter, found from the code (`openasm rules --used-by NAME`).

The package's own source is parsed (never imported): a parameter is read by the innermost function whose body
holds its dotted name as a string, directly (`rules.value("payment.risk_level")`) or through a module-level
constant that holds it (`PLURALITY_RULE = "participation.specialty_plurality_basis"`). So from a CFR section's
parameter one hop leads to the code that applies it.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

# RulesForYear methods that take a parameter's name as their first argument.
READ_METHODS = frozenset({"value", "cohort_value", "resolved"})


@dataclass(frozen=True)
class NamedRead:
    """A `rules.value("…")`-style call with a literal name, wherever it is (for the check that it exists)."""

    name: str
    module: str
    line: int


def _strings(node: ast.AST) -> Iterable[str]:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            yield sub.value


def _module_constants(tree: ast.Module, names: frozenset[str]) -> dict[str, set[str]]:
    """Module-level `CONSTANT = ...` assignments whose value holds parameter names."""
    constants: dict[str, set[str]] = {}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) and node.value is not None else []
        held = {s for s in _strings(node.value)} & names if targets else set()
        for target in targets:
            if isinstance(target, ast.Name) and held:
                constants[target.id] = held
    return constants


class _Reads(ast.NodeVisitor):
    """Parameter names per enclosing function (qualified), and every literal read call."""

    def __init__(self, module: str, names: frozenset[str], constants: dict[str, set[str]]) -> None:
        self.module, self.names, self.constants = module, names, constants
        self.stack: list[str] = []
        self.reads: dict[str, set[str]] = defaultdict(set)
        self.calls: list[NamedRead] = []

    def _scope(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self.stack.append(node.name)
        self.generic_visit(node)
        self.stack.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _scope

    def _where(self) -> str | None:
        return ".".join([self.module, *self.stack]) if self.stack else None

    def visit_Constant(self, node: ast.Constant) -> None:
        where = self._where()
        if where and isinstance(node.value, str) and node.value in self.names:
            self.reads[node.value].add(where)

    def visit_Name(self, node: ast.Name) -> None:
        where = self._where()
        if where and node.id in self.constants:
            for name in self.constants[node.id]:
                self.reads[name].add(where)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in READ_METHODS and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str) and "." in first.value:
                self.calls.append(NamedRead(first.value, self.module, node.lineno))
        self.generic_visit(node)


def _package_root() -> Path:
    return Path(str(resources.files("openasm")))


def _modules(root: Path) -> Iterable[tuple[str, ast.Module]]:
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield module, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


@lru_cache(maxsize=4)
def _scan(names: frozenset[str], root: Path) -> tuple[dict[str, tuple[str, ...]], tuple[NamedRead, ...]]:
    reads: dict[str, set[str]] = defaultdict(set)
    calls: list[NamedRead] = []
    for module, tree in _modules(root):
        visitor = _Reads(module, names, _module_constants(tree, names))
        visitor.visit(tree)
        for name, where in visitor.reads.items():
            reads[name] |= where
        calls.extend(visitor.calls)
    return {name: tuple(sorted(reads.get(name, ()))) for name in sorted(names)}, tuple(calls)


def functions_reading(names: Iterable[str], root: Path | None = None) -> dict[str, tuple[str, ...]]:
    """For each parameter name, the qualified names of the functions that read it (empty when none does)."""
    return _scan(frozenset(names), root or _package_root())[0]


def literal_reads(names: Iterable[str], root: Path | None = None) -> tuple[NamedRead, ...]:
    """Every `rules.value/cohort_value/resolved("…")` call with a literal dotted name in the package."""
    return _scan(frozenset(names), root or _package_root())[1]
