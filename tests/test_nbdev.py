"nbdev is the source of truth: exporting and cleaning a clean checkout changes nothing."
import shutil, subprocess, sys
from pathlib import Path
import pytest
from conftest import ROOT
from gaokerena.config import CHAPTERS

BIN = Path(sys.executable).parent


def _copy_tracked(dest: Path) -> Path:
    "A copy of the files git tracks (or would track), as a clean clone would have them."
    files = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard'], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    for f in files:
        if (ROOT/f).is_file():
            (dest/f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT/f, dest/f)
    return dest


@pytest.fixture(scope='module')
def checkout(tmp_path_factory):
    if shutil.which('git') is None or not (ROOT/'.git').exists(): pytest.skip('needs a git checkout')
    return _copy_tracked(tmp_path_factory.mktemp('checkout'))


def _snapshot(root: Path, pattern: str) -> dict:
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.glob(pattern))}


def test_export_in_sync(checkout):
    before = _snapshot(checkout, 'gaokerena/*.py')
    subprocess.run([BIN/'nbdev-export'], cwd=checkout, check=True, capture_output=True)
    after = _snapshot(checkout, 'gaokerena/*.py')
    changed = [str(p) for p in after if before.get(p) != after[p]] + [str(p) for p in before if p not in after]
    assert not changed, f'nbdev-export changes {changed}: edit the notebooks and run nbdev-export'


def test_notebooks_clean(checkout):
    before = _snapshot(checkout, 'nbs/*.ipynb')
    subprocess.run([BIN/'nbdev-clean'], cwd=checkout, check=True, capture_output=True)
    after = _snapshot(checkout, 'nbs/*.ipynb')
    assert [str(p) for p in after if before[p] != after[p]] == [], 'run nbdev-clean and commit'


def test_parameters_tag_survives_clean():
    import json
    for ch in CHAPTERS:
        nb = json.loads((ROOT/'nbs'/f'{ch}.ipynb').read_text())
        tagged = [c for c in nb['cells'] if 'parameters' in c.get('metadata', {}).get('tags', [])]
        assert len(tagged) == 1, ch
        src = ''.join(tagged[0]['source'])
        for p in ('profile = "tiny"', 'run_dir = None', 'data_dir = None', 'overrides = {}'): assert p in src, (ch, p)


@pytest.mark.parametrize('nb', sorted(p.name for p in (ROOT/'nbs').glob('9*.ipynb')))
def test_appendix_notebook_examples_pass(nb):
    "The appendix notebooks' examples are tests: run them the way nbdev-test does."
    r = subprocess.run([BIN/'nbdev-test', f'nbs/{nb}'], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
