"""The layers of ARCHITECTURE.md: no module imports one above it, function-local imports included, and
every function-local import is a commented lazy import of a heavy library."""

from __future__ import annotations

import ast
from pathlib import Path

import wavetool

SRC = Path(wavetool.__file__).parent

# The CLI's command modules: above cli.app (which holds `app`), below cli/__init__ (which imports them).
COMMANDS = (
    "codebook",
    "custom",
    "deliver",
    "drivers",
    "export",
    "ingest",
    "pipeline",
    "report",
    "study",
    "tables",
    "weight",
)

# Bottom first. A module may import modules of its own layer or below. A module belongs to the entry
# with the longest matching dotted prefix; a module matching none fails the test (add it here).
LAYERS: list[tuple[str, ...]] = [
    ("wavetool", "wavetool.errors", "wavetool.context", "wavetool.sql", "wavetool.fsutil", "wavetool.resources"),
    ("wavetool.config", "wavetool.store"),
    ("wavetool.codebook.model",),
    ("wavetool.codebook.companion", "wavetool.codebook.persist", "wavetool.codebook.gate"),
    ("wavetool.codebook.harmonise", "wavetool.codebook"),
    ("wavetool.drift",),
    ("wavetool.ingest.savpatch", "wavetool.ingest.por", "wavetool.ingest.labels", "wavetool.ingest.staging"),
    ("wavetool.ingest.spss", "wavetool.ingest.csvfile"),
    ("wavetool.ingest.decode",),
    ("wavetool.ingest.validate",),
    ("wavetool.custom.query",),
    ("wavetool.custom.merge", "wavetool.custom"),
    ("wavetool.texts", "wavetool.ingest.wave", "wavetool.ingest"),
    ("wavetool.stats", "wavetool.weighting", "wavetool.export"),
    ("wavetool.report.text", "wavetool.report.manifest", "wavetool.report.wording", "wavetool.report.pdf"),
    ("wavetool.report.charts",),
    ("wavetool.report.model",),
    ("wavetool.report.render",),
    ("wavetool.report.build", "wavetool.report", "wavetool.databook"),
    ("wavetool.deliver",),
    ("wavetool.pipeline",),
    ("wavetool.status",),
    ("wavetool.seed",),
    ("wavetool.cli.output", "wavetool.cli.app"),
    tuple(f"wavetool.cli.{name}" for name in COMMANDS),
    ("wavetool.cli", "wavetool.__main__"),
]


def module_names() -> dict[str, Path]:
    names = {}
    for path in SRC.rglob("*.py"):
        parts = ["wavetool", *path.relative_to(SRC).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def layer_of(module: str) -> int:
    best, layer = -1, -1
    for index, entries in enumerate(LAYERS):
        for entry in entries:
            if (module == entry or module.startswith(entry + ".")) and len(entry) > best:
                best, layer = len(entry), index
    assert layer >= 0, f"{module} is in no layer: add it to LAYERS in tests/test_layers.py and to ARCHITECTURE.md"
    return layer


def imports(module: str, path: Path, known: dict[str, Path]) -> list[tuple[int, str, bool]]:
    """(line, imported wavetool module, function-local?) for every import in the module's file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    local = {
        id(node)
        for fn in ast.walk(tree)
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
        for node in ast.walk(fn)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            targets = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `from pkg import name` names a module or an attribute
                target = target.rpartition(".")[0]
            if target and target != module:
                found.append((node.lineno, target, id(node) in local))
    return found


def upward_imports() -> list[str]:
    known = module_names()
    problems = []
    for module, path in sorted(known.items()):
        for line, target, _ in imports(module, path, known):
            if layer_of(target) > layer_of(module):
                problems.append(f"{path.relative_to(SRC.parent)}:{line}: {module} imports {target}, a higher layer")
    return problems


def test_no_module_imports_a_higher_layer() -> None:
    assert upward_imports() == []


def _commented_lazy(lines: list[str], index: int) -> bool:
    """Whether the import at ``lines[index]``, or the block of imports and comments just above it, says ``lazy:``."""
    while index >= 0:
        if "lazy:" in lines[index]:
            return True
        index -= 1
        if index < 0 or not lines[index].strip().startswith(("import ", "from ", "#")):
            return False
    return False


def test_function_local_imports_are_commented_lazy_imports() -> None:
    """A function-local import hides a dependency: allowed only for a heavy library (or a module that imports
    one), with a ``lazy:`` comment on the line or the line above saying why."""
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        tree = ast.parse("\n".join(lines))
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    if not _commented_lazy(lines, node.lineno - 1):
                        bad.append(f"{path.relative_to(SRC.parent)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert bad == []


def test_the_layer_test_sees_an_upward_import(tmp_path: Path, monkeypatch) -> None:
    """The checker itself: a function-local import of a higher layer (sql importing pipeline) is reported."""
    fake = tmp_path / "wavetool"
    for path in SRC.rglob("*.py"):
        target = fake / path.relative_to(SRC)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    sql = fake / "sql.py"
    sql.write_text(sql.read_text(encoding="utf-8") + "\n\ndef _f():\n    from .pipeline import run\n", encoding="utf-8")
    monkeypatch.setattr(__import__(__name__), "SRC", fake)
    assert [p.split(": ", 1)[1] for p in upward_imports()] == ["wavetool.sql imports wavetool.pipeline, a higher layer"]


def test_no_test_module_imports_another() -> None:
    """Shared fixtures live in conftest.py or a helper module (helpers, mailhelpers, edgestudy, ...): a test
    importing another test module runs that module's tests' setup and couples their edits."""
    tests = Path(__file__).parent
    bad = []
    for path in sorted(tests.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            bad += [f"{path.name}: imports {n}" for n in names if n.split(".")[0].startswith("test_")]
    assert bad == []
