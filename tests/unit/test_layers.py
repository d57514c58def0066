"""Layering (STYLE.md): translators are sans-IO; entries and adapters meet only in `ir`."""
import ast
import pathlib

PKG = pathlib.Path(__file__).resolve().parents[2] / "ferryllm"
SANS_IO = ["ir.py", "errors.py", "sse.py", "config.py", "config_values.py", "router.py", "policy.py", "limits.py",
           "auth.py", "tokens.py", "toolnames.py", "schema.py", "entry", "adapters"]


def imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(("." * node.level) + (node.module or ""))
    return names


def files(entry: str):
    path = PKG / entry
    return sorted(path.glob("*.py")) if path.is_dir() else ([path] if path.exists() else [])


def test_translators_do_not_touch_sockets_or_the_loop():
    for entry in SANS_IO:
        for path in files(entry):
            bad = {n for n in imports(path) if n.split(".")[0] in ("aiohttp", "asyncio", "socket")}
            assert not bad, f"{path.name} imports {bad}"


def test_entries_and_adapters_meet_only_in_ir():
    for path in files("entry"):
        assert not any("adapters" in n for n in imports(path)), path.name
    for path in files("adapters"):
        assert not any("entry" in n for n in imports(path)), path.name
