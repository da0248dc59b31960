"""The layers of `docs/ARCHITECTURE.md`, kept true: every module of `app/` imports only the layers
below its own, the bottom layers import no web framework, and only `app.lxd` speaks HTTP to LXD.

Every import counts, also those inside a function or under `TYPE_CHECKING`: a dependency that
only shows up at run time is still a dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app"

# What each layer may import from `app` (besides itself). Bottom first; `api` and `main` sit on
# top and may import every layer below them. Keep this table and docs/ARCHITECTURE.md together.
MAY_IMPORT: dict[str, set[str]] = {
    "errors": set(),
    "utils": set(),
    "core": {"errors"},
    "lxd": {"core", "errors"},
    "db": {"core", "errors"},
    "metrics": {"core", "errors"},
    "audit": {"core", "db", "errors"},
    "schemas": {"core", "errors"},
    "services": {"core", "errors", "lxd", "schemas", "utils"},
    "auth": {"core", "db", "errors", "lxd", "schemas", "services"},
    "api": {"audit", "auth", "core", "db", "errors", "lxd", "metrics", "schemas", "services"}
    | {"utils"},
    "main": {"api", "audit", "auth", "core", "db", "errors", "lxd", "metrics", "schemas"}
    | {"services", "utils"},
}
# The web framework stays at the edge: middleware (core, metrics, audit), routes and the app.
NO_WEB_FRAMEWORK = {"errors", "utils", "lxd", "db", "schemas", "services", "auth"}
WEB_FRAMEWORKS = {"fastapi", "starlette"}
# The database stays with the user store, the audit log and the auth domain that reads them.
NO_DATABASE = {"errors", "utils", "core", "lxd", "schemas", "services", "metrics"}
# HTTP to LXD goes through the client; `main` names httpx's transport type for tests only.
HTTPX_ALLOWED = {"lxd", "main"}


def layer_of(module: str) -> str | None:
    """`app.api.v1.routes.instances` -> `api`; `app.main`, `app.__main__` -> `main`."""
    parts = module.split(".")
    if parts[0] != "app" or len(parts) == 1:
        return None
    return "main" if parts[1] in ("main", "__main__") else parts[1]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> Iterator[tuple[int, str]]:
    """Every module `path` imports, absolute, with its line (`from app import audit` is
    `app.audit`)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "app":
                for alias in node.names:
                    yield node.lineno, f"app.{alias.name}"
            else:
                yield node.lineno, node.module


def violations(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root)
        layer = layer_of(module)
        if layer is None:
            continue
        where = f"{path.relative_to(root.parent)}"
        for line, imported in imports_of(path):
            top = imported.split(".")[0]
            target = layer_of(imported)
            if target is not None and target != layer and target not in MAY_IMPORT[layer]:
                found.append(f"{where}:{line}: {layer} may not import {imported} ({target})")
            if top in WEB_FRAMEWORKS and layer in NO_WEB_FRAMEWORK:
                found.append(f"{where}:{line}: {layer} may not import {imported} (web framework)")
            if top == "sqlalchemy" and layer in NO_DATABASE:
                found.append(f"{where}:{line}: {layer} may not import {imported} (database)")
            if top == "httpx" and layer not in HTTPX_ALLOWED:
                found.append(f"{where}:{line}: {layer} may not import httpx (LXD is app.lxd's)")
            if (
                imported.startswith("app.api.v1.routes.")
                and module.startswith("app.api.v1.routes.")
                and imported != module
            ):
                found.append(f"{where}:{line}: a route module imports another ({imported})")
    return found


def test_every_layer_of_app_imports_only_the_layers_below_it() -> None:
    assert violations(APP) == []


def test_every_package_of_app_has_a_place_in_the_table() -> None:
    layers = {layer_of(module_name(path, APP)) for path in APP.rglob("*.py")}
    assert layers - {None} <= set(MAY_IMPORT), "a new package: give it a row in MAY_IMPORT"


def write(root: Path, name: str, source: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)


@pytest.mark.parametrize(
    ("name", "source", "expected"),
    [
        ("services/x.py", "from app.db.models import User\n", "services may not import app.db"),
        ("services/x.py", "from app import auth\n", "services may not import app.auth"),
        ("lxd/x.py", "def f():\n    from app.services import x\n", "lxd may not import"),
        ("schemas/x.py", "from fastapi import Path\n", "(web framework)"),
        ("auth/x.py", "import starlette.requests\n", "(web framework)"),
        ("services/x.py", "import sqlalchemy\n", "(database)"),
        ("services/x.py", "import httpx\n", "may not import httpx"),
        ("core/x.py", "from app.api.deps import LXDDep\n", "core may not import app.api.deps"),
        (
            "api/v1/routes/a.py",
            "from app.api.v1.routes.b import router\n",
            "a route module imports another",
        ),
    ],
)
def test_the_check_finds_an_import_against_the_direction(
    tmp_path: Path, name: str, source: str, expected: str
) -> None:
    root = tmp_path / "app"
    write(root, "__init__.py", "")
    write(root, name, source)
    found = violations(root)
    assert len(found) == 1, found
    assert expected in found[0]


def test_the_check_lets_an_import_down_through(tmp_path: Path) -> None:
    root = tmp_path / "app"
    write(root, "api/v1/routes/a.py", "from app.services import x\nfrom app.api.deps import y\n")
    write(root, "services/x.py", "from app.lxd import LXDClient\nfrom app.errors import E\n")
    write(root, "auth/x.py", "from app.services.devices import DeviceGuard\n")
    assert violations(root) == []
