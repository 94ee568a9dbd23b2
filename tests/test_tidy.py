"""The repository stands on its own: no references to files outside it or to the project's issue numbers, and the
course map in the index lists exactly the chapters (the notebooks nbs/0*.ipynb)."""
import json, re, subprocess
from pathlib import Path
import pytest
from conftest import ROOT

SCOPE = ('nbs/', 'gaokerena/', 'bench/', 'tests/', 'colab/', '.ci/', 'README.md', 'settings.ini', 'pyproject.toml')
# What a reader of the repository alone cannot follow. The default data folder `../shared/data` (tests and bench read
# the authors' data there unless GAOKERENA_DATA_DIR says otherwise) is a setting, not a reference, so it is allowed.
OUTSIDE = {
    'a folder of the machine the kit was written on': r'/work/',
    "the developers' design guide": r"\bGUIDE\b|developers'? guide",
    'a file beside the clone': r'\.\./shared/(?!data\b(?!/))',
    'an issue number': r'\b[Ii]ssues? #?\d+|\bsee issue\b|(?<![\w&/:#])#\d{1,4}(?![\w;}])',
}


def tracked() -> list[Path]:
    "The text files git tracks (or would) in the scope above, this file excepted (it spells the patterns out)."
    files = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard'], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    return [ROOT/f for f in files if f.startswith(SCOPE) and (ROOT/f).is_file() and f != 'tests/test_tidy.py'
            and (ROOT/f).suffix not in ('.png', '.jpg', '.xlsx', '.safetensors')]


def references(text: str) -> list[tuple[int, str, str]]:
    "(line, what, the text) for each reference outside the repository in `text`; nbdev's `# %%` cell markers are not prose."
    found = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith('# %%'): continue
        found += [(n, what, m.group(0)) for what, pattern in OUTSIDE.items() for m in re.finditer(pattern, line)]
    return found


def test_the_patterns_find_what_they_mean():
    bad = ['see /work/shared/GUIDE.md', '(GUIDE §3)', 'the developers guide says', 'read ../shared/GUIDE.md',
           'see ../shared/data/README.md', 'fixed in issue 13', 'as #14 asked', 'see issue', 'Issues 7 and 8']
    fine = ['GAOKERENA_DATA_DIR, else ../shared/data', "place it at ../shared/data (CC BY-NC-SA)", 'color:#222}',
            '{"id": "#0a1b"}', 'pass@3', 'tissue 13 cells', 'a guided retry']
    assert [t for t in bad if not references(t)] == []
    assert [(t, references(t)) for t in fine if references(t)] == []


def test_no_references_outside_the_repository():
    found = [f'{p.relative_to(ROOT)}:{n}: {what}: {text!r}' for p in tracked()
             for n, what, text in references(p.read_text(encoding='utf-8', errors='replace'))]
    assert found == [], '\n'.join(found)


def course_map() -> list[tuple[str, str]]:
    "(name, linked notebook) of each row of the index's course map table."
    nb = json.loads((ROOT/'nbs'/'index.ipynb').read_text())
    text = '\n'.join(''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'markdown')
    if '## The map' not in text: pytest.fail('nbs/index.ipynb has no "## The map" section')
    section = text.split('## The map', 1)[1].split('\n## ', 1)[0]
    return re.findall(r'^\|\s*\[`([^`]+)`\]\(([^)]+)\.ipynb\)', section, re.M)


def test_course_map_matches_the_chapters():
    chapters = sorted(p.stem for p in (ROOT/'nbs').glob('0*.ipynb'))
    rows = course_map()
    assert [name for name, _ in rows] == chapters, 'the course map must list every chapter notebook, in order, and nothing else'
    assert all(name == link for name, link in rows), rows
