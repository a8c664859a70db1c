"""The shape of the admin package: small modules that each say what they are for, imported one way.

Read from the source with ``ast``, so an import inside a function (which hides a cycle from
Python until the function runs) counts as much as one at the top of a module; imports under
``if TYPE_CHECKING:`` do not, as they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import authhero_encrypt

PACKAGE = Path(authhero_encrypt.__file__).parent
ADMIN = "authhero_encrypt.admin"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
ADMIN_MODULES = [name for name in MODULES if name == ADMIN or name.startswith(f"{ADMIN}.")]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported_names(name: str, path: Path) -> set[str]:
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def imports_of(name: str) -> set[str]:
    """The package's modules that ``name`` imports, the packages they live in included."""
    modules: set[str] = set()
    for imported in _imported_names(name, MODULES[name]):
        while imported and imported not in MODULES:
            imported = imported.rpartition(".")[0]
        # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
        parts = imported.split(".")
        for depth in range(1, len(parts) + 1):
            module = ".".join(parts[:depth])
            if module in MODULES and module != name and not name.startswith(f"{module}."):
                modules.add(module)
    return modules


def cycle_through(start: str, graph: dict[str, set[str]]) -> list[str] | None:
    """A path of imports from ``start`` back to itself, or ``None``."""
    stack = [(start, [start])]
    seen: set[str] = set()
    while stack:
        name, path = stack.pop()
        for imported in sorted(graph[name]):
            if imported == start:
                return [*path, start]
            if imported not in seen:
                seen.add(imported)
                stack.append((imported, [*path, imported]))
    return None


def test_the_admin_is_a_package_of_several_modules():
    assert MODULES[ADMIN].name == "__init__.py"
    assert len(ADMIN_MODULES) > 5


@pytest.mark.parametrize("name", ADMIN_MODULES)
def test_each_admin_module_says_what_it_is_for_and_stays_small(name):
    source = MODULES[name].read_text(encoding="utf-8")
    docstring = ast.get_docstring(ast.parse(source))
    assert docstring, f"{name} does not open with a docstring"
    assert len(source.splitlines()) <= 400, f"{name} is over 400 lines"


@pytest.mark.parametrize("name", ADMIN_MODULES)
def test_admin_imports_run_one_way(name):
    cycle = cycle_through(name, {module: imports_of(module) for module in MODULES})
    assert cycle is None, " -> ".join(cycle)


def test_nothing_below_the_admin_imports_it():
    # The app config registers the admin checks; fields, inventory, the codec and the commands
    # know nothing of the admin. The optional integrations sit above it, as the app config does:
    # import-export's admin check and the DRF analysis of what a lookup reaches use the admin's.
    importers = {
        module
        for module in MODULES
        if module not in ADMIN_MODULES
        and not module.startswith("authhero_encrypt.integrations.")
        and any(imported in ADMIN_MODULES for imported in imports_of(module))
    }
    assert importers == {"authhero_encrypt.apps"}


def test_the_public_names_stay_importable_from_the_package():
    from authhero_encrypt import admin
    from authhero_encrypt.admin import EncryptedFieldsAdminMixin, JSONKeyColumn
    from authhero_encrypt.admin.columns import JSONKeyColumn as column_class
    from authhero_encrypt.admin.options import EncryptedFieldsAdminMixin as mixin_class

    assert (EncryptedFieldsAdminMixin, JSONKeyColumn) == (mixin_class, column_class)
    assert sorted(admin.__all__) == sorted(
        [
            "MASK",
            "RETYPE",
            "EncryptedFieldsAdminMixin",
            "EncryptedFieldsFormMixin",
            "JSONKeyColumn",
            "MaskedJSONField",
            "SecretAction",
            "WriteOnlySecretField",
            "WriteOnlySecretWidget",
            "document_status",
            "secret_status",
        ]
    )
    assert all(hasattr(admin, public) for public in admin.__all__)
