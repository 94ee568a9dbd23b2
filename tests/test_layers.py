"The package's layers point one way: infrastructure <- chapters <- appendices and entry points, with no import circles."
import ast, json
from pathlib import Path
import pytest
from conftest import ROOT

PKG = ROOT/'gaokerena'
INFRASTRUCTURE, CHAPTER, APPENDIX = 0, 1, 2
LAYER_NAMES = {INFRASTRUCTURE: 'infrastructure', CHAPTER: 'chapter', APPENDIX: 'appendix or entry point'}
LAYERS = {  # every module of the package: a new module fails `test_every_module_has_a_layer` until it is placed here
    **dict.fromkeys(('config', 'stores', 'rows', 'sheets', 'ledger', 'models', 'llm', 'crawl', 'world', 'sources', 'translate',
                     'generation', 'teacher', 'extract'), INFRASTRUCTURE),
    **dict.fromkeys(('data', 'sft', 'evaluate', 'rlaif', 'passk', 'grpo', 'stages', 'sampling', 'results', 'rounds',
                     'evalrun'), CHAPTER),
    **dict.fromkeys(('reproduce', 'report', 'colab', 'cli', 'train', 'harness'), APPENDIX)}
PLUMBING = {'__init__', '_modidx'}  # nbdev's package files, no code of the kit


def package_imports(tree: ast.AST, modules: set, here: str | None = None) -> list[tuple[str, list[str], int]]:
    "(module, names, line) of every import of a package module in `tree`, top-level or inside functions; names [] for `import gaokerena.x`."
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name.split('.')[1], [], node.lineno) for a in node.names if a.name.startswith('gaokerena.')]
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ''
            if node.level == 0 and mod != 'gaokerena' and not mod.startswith('gaokerena.'): continue
            parts = (mod.split('.')[1:] if node.level == 0 else mod.split('.')) if mod else []
            names = [a.name for a in node.names]
            if parts and parts[0]: found.append((parts[0], names if len(parts) == 1 else [], node.lineno))
            else: found += [(n, [], node.lineno) for n in names if n in modules]  # from gaokerena import evaluate
    return [f for f in found if f[0] != here]


def module_trees() -> dict[str, ast.Module]:
    "{module: its parsed source} for every module of the package."
    return {p.stem: ast.parse(p.read_text(encoding='utf-8'), str(p)) for p in sorted(PKG.glob('*.py')) if p.stem not in PLUMBING}


def import_graph(trees: dict) -> dict[str, set[str]]:
    "{module: the package modules it imports}."
    return {m: {i[0] for i in package_imports(t, set(trees), m)} for m, t in trees.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    "Closed paths (first module repeated at the end): in each group of modules that import each other, the shortest through each member."
    index, low, stack, on, groups = {}, {}, [], set(), []
    def visit(v):
        index[v] = low[v] = len(index); stack.append(v); on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index: visit(w); low[v] = min(low[v], low[w])
            elif w in on: low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop(); on.discard(w); group.add(w)
                if w == v: break
            if len(group) > 1: groups.append(group)
    for v in sorted(graph):
        if v not in index: visit(v)
    found = {}
    for g in groups:
        for start in sorted(g):
            path = closed_path(graph, g, start)
            found.setdefault(frozenset(zip(path, path[1:])), path)
    return list(found.values())


def closed_path(graph: dict, group: set, start: str) -> list[str]:
    "A shortest path from `start` back to itself inside `group`."
    paths = {w: [start, w] for w in graph[start] & group}
    frontier = list(paths)
    while start not in paths:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & group):
                if w not in paths: paths[w] = paths[v] + [w]; nxt.append(w)
        frontier = nxt
    return paths[start]


def test_graph_sees_every_kind_of_import():
    src = ("from .data import LETTERS\nfrom . import evaluate\nimport gaokerena\n"
           "def f():\n    from gaokerena.report import save\n    import gaokerena.cli\n    from gaokerena import passk")
    got = package_imports(ast.parse(src), {'data', 'evaluate', 'report', 'cli', 'passk'})
    assert [(m, n) for m, n, _ in got] == [('data', ['LETTERS']), ('evaluate', []), ('report', ['save']), ('cli', []), ('passk', [])]


def test_cycles_are_found_with_their_path():
    assert cycles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == [['a', 'b', 'c', 'a']]
    assert cycles({'a': {'b'}, 'b': set()}) == []


def test_every_module_has_a_layer():
    missing = sorted(set(module_trees()) - set(LAYERS))
    assert not missing, f"modules without a layer: {missing}; place each in LAYERS (tests/test_layers.py) as infrastructure, chapter or appendix"


def test_no_import_cycles():
    found = cycles(import_graph(module_trees()))
    assert not found, 'import cycles (imports inside functions count): ' + '; '.join(' -> '.join(c) for c in found)


def test_layers_point_one_way():
    wrong = [f"{m} ({LAYER_NAMES[LAYERS[m]]}) imports {d} ({LAYER_NAMES[LAYERS[d]]})"
             for m, deps in import_graph(module_trees()).items() for d in sorted(deps)
             if m in LAYERS and d in LAYERS and LAYERS[d] > LAYERS[m]]
    assert not wrong, 'a module imports only from its layer or below: ' + '; '.join(wrong)


def defined_names(tree: ast.Module) -> set[str]:
    "Names a module defines at its top level (functions, classes, assignments), not those it imports."
    names, body = set(), list(tree.body)
    while body:
        node = body.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)): names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                names |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            body += node.body + getattr(node, 'orelse', []) + getattr(node, 'finalbody', [])
            body += [s for h in getattr(node, 'handlers', []) for s in h.body]
    return names


def code_sources() -> dict[str, str]:
    "{where: Python source} of the package, tests, bench scripts and every code cell of the notebooks and Colab editions."
    out = {str(p.relative_to(ROOT)): p.read_text(encoding='utf-8')
           for d in ('gaokerena', 'tests', 'bench') for p in sorted((ROOT/d).glob('*.py')) if p.stem not in PLUMBING}
    for p in sorted((ROOT/'nbs').glob('*.ipynb')) + sorted((ROOT/'colab').glob('*.ipynb')):
        for c in json.loads(p.read_text(encoding='utf-8'))['cells']:
            if c['cell_type'] == 'code':
                lines = ''.join(c['source']).splitlines()
                out[f"{p.relative_to(ROOT)} cell {c.get('id')}"] = '\n'.join(l for l in lines if not l.lstrip().startswith(('%', '!')))
    return out


def test_names_are_imported_from_their_home():
    "`from gaokerena.x import name` names a module that defines `name`: no module passes on what it imports from another."
    defined = {m: defined_names(t) for m, t in module_trees().items()}
    wrong = [f"{where}:{line}: {name} from {m}" for where, src in code_sources().items()
             for m, names, line in package_imports(ast.parse(src), set(defined)) if m in defined
             for name in names if name != '*' and name not in defined[m]]
    assert not wrong, 'imported from a module that does not define them: ' + '; '.join(wrong)


CHAPTER_NOTEBOOKS = sorted((ROOT/'nbs').glob('0*.ipynb'))
MAX_CHAPTER_CODE_LINES = 350


def code_lines(nb: dict) -> int:
    "Non-blank lines of every code cell (exported or not, directive lines such as `#| export` included)."
    return sum(1 for c in nb['cells'] if c['cell_type'] == 'code' for l in ''.join(c['source']).splitlines() if l.strip())


def test_code_lines_count_every_code_cell_and_no_prose():
    nb = {'cells': [{'cell_type': 'code', 'source': ['#| export\n', 'x = 1\n', '\n', '  \n', 'y = 2']},
                    {'cell_type': 'markdown', 'source': ['# a title\n', 'prose']}, {'cell_type': 'code', 'source': []}]}
    assert code_lines(nb) == 3


@pytest.mark.parametrize('path', CHAPTER_NOTEBOOKS, ids=lambda p: p.stem)
def test_chapters_are_short(path):
    "A chapter shows the idea and calls its machinery (a 99_ notebook) in a line: at most 350 lines of code."
    assert code_lines(json.loads(path.read_text(encoding='utf-8'))) <= MAX_CHAPTER_CODE_LINES
