"""Import graph of src/wavetool: edges (module-level and function-local), cycles (SCCs)."""

import ast
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "src/wavetool")
mods = {}
for p in root.rglob("*.py"):
    rel = p.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    ispkg = parts[-1] == "__init__"
    if ispkg:
        parts = parts[:-1]
    mods[".".join(parts)] = (p, ispkg)


def resolve(name):
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name


edges = {}
local = 0
for m, (p, ispkg) in mods.items():
    tree = ast.parse(p.read_text())
    pkg = m if ispkg else m.rpartition(".")[0]
    fn_nodes = set()
    for n in ast.walk(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for s in ast.walk(n):
                if isinstance(s, (ast.Import, ast.ImportFrom)):
                    fn_nodes.add(id(s))
    for n in ast.walk(tree):
        targets = []
        if isinstance(n, ast.Import):
            targets = [a.name for a in n.names]
        elif isinstance(n, ast.ImportFrom):
            if n.level:
                base = pkg.split(".")
                base = base[: len(base) - (n.level - 1)]
                b = ".".join(base + ([n.module] if n.module else []))
            else:
                b = n.module or ""
            targets = [b + "." + a.name for a in n.names] + [b]
        for t in targets:
            if not t.startswith("wavetool"):
                continue
            r = resolve(t)
            if r and r != m:
                edges.setdefault(m, set()).add(r)
        if targets and id(n) in fn_nodes and any(t.startswith("wavetool") for t in targets):
            local += 1
# Tarjan
idx = {}
low = {}
st = []
on = set()
sccs = []
c = [0]
sys.setrecursionlimit(10000)


def sc(v):
    idx[v] = low[v] = c[0]
    c[0] += 1
    st.append(v)
    on.add(v)
    for w in edges.get(v, ()):
        if w not in idx:
            sc(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop()
            on.discard(w)
            comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            sccs.append(sorted(comp))


for v in mods:
    if v not in idx:
        sc(v)
# usage: python tools/import_graph.py [src/wavetool] [--edges]
print(f"modules {len(mods)}  internal edges {sum(map(len, edges.values()))}  function-local wavetool imports {local}")
print(f"strongly connected components (cycles): {len(sccs)}")
for s in sccs:
    print("  ", len(s), s)
if "--edges" in sys.argv:
    for m in sorted(edges):
        print(m, "->", ", ".join(sorted(edges[m])))
