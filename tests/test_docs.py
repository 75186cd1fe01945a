"""The docs cover the tool: every command of the CLI (walked from the typer app) has a page in docs/ that
shows it, and every key that config.py accepts (read from its `check_keys({...})` calls, section by section)
is described under its section's heading in docs/configuration.md. A failure says exactly what to document
where. The README stays a short guide that links every reference page."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import typer.main

from wavetool.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CONFIG_PY = ROOT / "src" / "wavetool" / "config.py"
CONFIG_DOC = DOCS / "configuration.md"


def command_paths() -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []

    def walk(command, path: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
        if path:
            found.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return found


# --- the config keys config.py accepts --------------------------------------------------------------------


class _Sections:
    """Which TOML table each `_Section` variable of config.py stands for, resolved from the code: `X =
    Y.section("name")`, `X = _Section(file, f"{Y.path}.name[…]", …)`, `for X in _items(Y, "name", …)`, and a
    function's parameter from the calls that pass it a section."""

    def __init__(self, tree: ast.Module) -> None:
        self.functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
        self.params: dict[tuple[str, str], str] = {("parse_config", "top"): ""}
        for _ in range(4):  # a call chain is at most a few functions deep
            for name, func in self.functions.items():
                for call in ast.walk(func):
                    if (
                        isinstance(call, ast.Call)
                        and isinstance(call.func, ast.Name)
                        and call.func.id in self.functions
                    ):
                        callee = self.functions[call.func.id]
                        for arg, param in zip(call.args, callee.args.args, strict=False):
                            path = self.path(name, arg)
                            if path is not None:
                                self.params.setdefault((callee.name, param.arg), path)

    def assigned(self, function: str, variable: str) -> ast.AST | None:
        for node in ast.walk(self.functions[function]):
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == variable for t in node.targets):
                return node.value
            if isinstance(node, ast.For) and isinstance(node.target, ast.Name) and node.target.id == variable:
                return node.iter
        return None

    def path(self, function: str, node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            if (function, node.id) in self.params:
                return self.params[(function, node.id)]
            value = self.assigned(function, node.id)
            return None if value is None else self.path(function, value)
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "section" and node.args:
                base = self.path(function, func.value)
                arg = node.args[0]
                name = arg.value if isinstance(arg, ast.Constant) else "*"
                return None if base is None else _join(base, name)
            if isinstance(func, ast.Name) and func.id == "_items" and len(node.args) >= 2:
                base = self.path(function, node.args[0])
                return None if base is None else _join(base, node.args[1].value)  # type: ignore[attr-defined]
            if isinstance(func, ast.Name) and func.id == "_Section" and len(node.args) >= 2:
                return self.text(function, node.args[1])
        return None

    def text(self, function: str, node: ast.AST) -> str | None:
        """The section path an f-string or key() call builds: `f"{sec.path}.custom[{i}]"` -> "subscribers.custom"."""
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "key":
            base = self.path(function, node.func.value)
            return None if base is None else _join(base, "*")
        if isinstance(node, ast.JoinedStr):
            out = ""
            for part in node.values:
                if isinstance(part, ast.Constant):
                    out += part.value
                elif isinstance(part.value, ast.Attribute) and part.value.attr == "path":
                    base = self.path(function, part.value.value)
                    if base is None:
                        return None
                    out += base
                else:
                    out += "*"
            return re.sub(r"\[\*\]", "", out)
        return None


def _literal_keys(tree: ast.Module, node: ast.AST) -> list[str] | None:
    """The keys of a check_keys argument: a set literal, or ``set(NAME)`` of a module-level tuple of strings;
    None for anything computed."""
    if isinstance(node, ast.Set):
        return [e.value for e in node.elts]  # type: ignore[attr-defined]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        left, right = _literal_keys(tree, node.left), _literal_keys(tree, node.right)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "set" and node.args:
        arg = node.args[0]
        if isinstance(arg, ast.Name):
            for stmt in tree.body:
                if isinstance(stmt, ast.Assign) and any(
                    isinstance(x, ast.Name) and x.id == arg.id for x in stmt.targets
                ):
                    if isinstance(stmt.value, ast.Tuple) and all(isinstance(e, ast.Constant) for e in stmt.value.elts):
                        return [e.value for e in stmt.value.elts]  # type: ignore[attr-defined]
    return None


def _join(base: str, name: str) -> str:
    return f"{base}.{name}" if base else name


def config_keys() -> list[tuple[str, str, int]]:
    """(section, key, line) for every key config.py accepts; section "" is the top level."""
    tree = ast.parse(CONFIG_PY.read_text(encoding="utf-8"))
    sections = _Sections(tree)
    keys = []
    for name, func in sections.functions.items():
        for call in ast.walk(func):
            if not (
                isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "check_keys"
            ):
                continue
            elements = _literal_keys(tree, call.args[0]) if call.args else None
            if elements is None:
                continue  # a computed set (e.g. the languages): not a fixed list of keys
            section = sections.path(name, call.func.value)
            if section is None and name == "_role_values":  # the role keys of [columns] and of [waves.columns]
                keys += [(s, k, call.lineno) for s in ("columns", "waves.columns") for k in elements]
                continue
            assert section is not None, f"config.py line {call.lineno}: cannot tell which table this check_keys is for"
            keys += [(section, k, call.lineno) for k in elements]
    return keys


def _doc_sections() -> dict[str, str]:
    """section path (placeholders as *) -> the text under its heading in docs/configuration.md."""
    text = CONFIG_DOC.read_text(encoding="utf-8")
    found: dict[str, str] = {}
    heads = list(re.finditer(r"(?m)^#{2,4} .*?\[\[?([A-Za-z0-9_.<>*-]*)\]\]?.*$", text))
    for i, head in enumerate(heads):
        body = text[head.end() : heads[i + 1].start() if i + 1 < len(heads) else len(text)]
        path = ".".join("*" if (seg.isupper() or "<" in seg or seg == "*") else seg for seg in head[1].split("."))
        found[path] = found.get(path, "") + body
    return found


def test_the_key_reader_finds_the_foundation_sections():
    keys = {(s, k) for s, k, _ in config_keys()}
    assert {("", "study"), ("study", "name"), ("waves", "inbox"), ("subscribers.custom", "file")} <= keys
    assert {("delivery.smtp", "host"), ("tables.scales.*", "top"), ("jurisdictions.*", "fr")} <= keys


def test_every_config_key_is_documented_under_its_section():
    documented = _doc_sections()
    missing = []
    for section, key, line in config_keys():
        heading = f"[{section}]" if section else "the top-level tables"
        body = documented.get(section) if section else CONFIG_DOC.read_text(encoding="utf-8")
        if body is None:
            missing.append(
                f"[{section}] (config.py line {line}): docs/configuration.md has no heading for it; add"
                f" `## [{section.replace('*', 'NAME')}]` and a line `- \\`{key}\\` …` under it"
            )
        elif not re.search(rf"(?m)^[-*] `{re.escape(key)}`|^\| `{re.escape(key)}`", body):
            missing.append(
                f"{heading} `{key}` (config.py line {line}): add a line starting `- \\`{key}\\`` (what it does, its"
                f" default) under the heading of {heading} in docs/configuration.md"
            )
    assert not missing, "undocumented config keys:\n  " + "\n  ".join(dict.fromkeys(missing))


def test_every_command_is_documented():
    pages = {p.name: p.read_text(encoding="utf-8") for p in sorted(DOCS.glob("*.md"))}
    missing = []
    for path in command_paths():
        shown = "wavetool " + " ".join(path)
        if not any(re.search(rf"{re.escape(shown)}(?![\w-])", text) for text in pages.values()):
            missing.append(
                f"`{shown}`: no page of docs/ shows it; add a section with an example line `{shown} …` to the page"
                f" of its area (docs/index.md lists them) or a new page linked from docs/index.md"
            )
    assert not missing, "undocumented commands:\n  " + "\n  ".join(missing)


def test_readme_is_a_short_guide_linking_every_reference_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 220, "README.md is the guide; move reference material into docs/"
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    for page in sorted(DOCS.glob("*.md")):
        if page.name != "index.md":
            assert f"({page.name})" in index, f"docs/index.md does not link docs/{page.name}"
    assert "docs/index.md" in readme and "docs/configuration.md" in readme
