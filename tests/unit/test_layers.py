"""Layering (STYLE.md): translators are sans-IO; protocols meet only in `ir`; nothing outside
`ferryllm/protocols/` names a protocol (the registry answers instead)."""
import ast
import pathlib

from ferryllm import protocols

PKG = pathlib.Path(__file__).resolve().parents[2] / "ferryllm"
SANS_IO = ["ir.py", "errors.py", "sse.py", "config.py", "config_values.py", "router.py", "policy.py", "limits.py", "budgets.py",
           "breaker.py", "config_shared.py", "shared_scripts.py", "auth.py", "tokens.py", "toolnames.py", "schema.py", "jsonfields.py", "protocols"]


def imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(("." * node.level) + (node.module or ""))
            if node.module is None:  # `from .. import x`: x may be a module
                names.update(("." * node.level) + a.name for a in node.names)
    return names


def files(entry: str):
    path = PKG / entry
    return sorted(path.rglob("*.py")) if path.is_dir() else ([path] if path.exists() else [])


def test_translators_do_not_touch_sockets_or_the_loop():
    for entry in SANS_IO:
        for path in files(entry):
            bad = {n for n in imports(path) if n.split(".")[0] in ("aiohttp", "asyncio", "socket")}
            assert not bad, f"{path.name} imports {bad}"


def test_protocols_meet_only_in_ir():
    names = {p.name for p in protocols.all_protocols()}
    for package in sorted(p for p in (PKG / "protocols").iterdir() if p.is_dir() and p.name in names):
        others = names - {package.name}
        for path in files(f"protocols/{package.name}"):
            for name in imports(path):
                parts = name.lstrip(".").split(".")
                relative_other = name.startswith("..") and not name.startswith("...") and parts[0] in others
                absolute_other = name.startswith("ferryllm.protocols.") and parts[2] in others
                assert not (relative_other or absolute_other), f"{path} imports {name}"


def test_nothing_outside_protocols_names_a_protocol():
    names = {p.name for p in protocols.all_protocols()}
    for path in sorted(PKG.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                for side in (node.left, *node.comparators):
                    assert not (isinstance(side, ast.Constant) and side.value in names), \
                        f"{path.name}:{node.lineno} compares with a protocol name"
        for name in imports(path):
            parts = name.lstrip(".").split(".")
            assert not (parts[0] == "protocols" and len(parts) > 1), f"{path.name} imports {name}"
            assert not name.startswith("ferryllm.protocols."), f"{path.name} imports {name}"
