"The course site: `.ci/docs.py` executes every notebook of a fresh copy on the tiny profile, and nbdev-docs renders it."
import importlib.util, json, re, subprocess, sys
from pathlib import Path
import pytest
from conftest import ROOT
from nbdev.doclinks import nbpath2html

DOCS = ROOT/'.ci'/'docs.py'
CHAPTERS = sorted(p.name for p in (ROOT/'nbs').glob('0*.ipynb'))
NOTEBOOKS = sorted(p.name for p in (ROOT/'nbs').glob('*.ipynb'))
spec = importlib.util.spec_from_file_location('docs_build', DOCS)
docs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(docs)      # .ci/docs.py: how the build finds quarto


def new_files() -> set[str]:
    "The files in the clone that git does not track, ignored ones included (Python's caches aside)."
    out = subprocess.run(['git', 'status', '--porcelain', '--ignored'], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.splitlines()
    return {line[3:] for line in out if line[:2] in ('??', '!!') and '__pycache__' not in line and '.pytest_cache' not in line}


def image_outputs(nb: dict) -> list[str]:
    "The image MIME types among the outputs of `nb`'s code cells."
    return [k for c in nb['cells'] if c['cell_type'] == 'code' for o in c.get('outputs', []) for k in o.get('data', {})
            if k.startswith('image/')]


@pytest.fixture(scope='module')
def executed(tmp_path_factory):
    "A copy of the repository whose notebooks .ci/docs.py executed (outputs saved)."
    work, before = tmp_path_factory.mktemp('docs')/'clone', new_files()
    r = subprocess.run([sys.executable, DOCS, '--no-render', '--work', work], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert new_files() - before == set()      # everything ran in the copy: no run folder, cache or page in the clone
    return work


def test_every_notebook_is_executed_and_chapters_hold_figures(executed):
    assert sorted(p.name for p in (executed/'nbs').glob('*.ipynb')) == NOTEBOOKS
    for name in NOTEBOOKS:
        nb = json.loads((executed/'nbs'/name).read_text())
        code = [c for c in nb['cells'] if c['cell_type'] == 'code' and c['source']]
        assert code and all(c.get('execution_count') for c in code if '#| eval: false' not in ''.join(c['source'])), name
        assert not [o for c in code for o in c.get('outputs', []) if o.get('output_type') == 'error'], name
        if name in CHAPTERS:
            assert 'image/png' in image_outputs(nb), f'{name}: no figure among its outputs'
    assert not (executed/'nbs'/'runs').exists()    # the chapters' run folder (runs/tiny in the copy) is not rendered


def page_images(html: str, page: Path) -> list[str]:
    "The images a page shows from outputs: files beside it that exist, or embedded data (PNG or SVG)."
    found = []
    for src in re.findall(r'<img[^>]+src="([^"]+)"', html):
        if src.startswith('data:image/'): found.append(src[:30])
        elif (page.parent/src).is_file() and (page.parent/src).stat().st_size > 1000: found.append(src)
    return found + re.findall(r'<svg[^>]*>', html)


def test_site_pages_hold_executed_figures(executed, tmp_path):
    if docs.find_quarto(docs.environment()) is None:
        pytest.skip('quarto not installed: the site needs the docs extra (pip install -e ".[docs]", the quarto-cli '
                    'package, which fetches Quarto while it installs); the notebooks were still executed above')
    site = tmp_path/'site'
    r = subprocess.run([sys.executable, DOCS, '--work', executed, '--out', site], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for name in CHAPTERS:
        page = site/nbpath2html(Path(name)).name
        assert page.is_file(), f'{name}: no page {page.name} in the site'
        html = page.read_text()
        assert 'cell-output' in html and page_images(html, page), f'{page.name}: no executed figure'
    assert (site/'index.html').is_file() and 'mermaid' in (site/'index.html').read_text()


def test_no_quarto_means_a_clear_message_and_no_download(tmp_path):
    "Without quarto the build stops before executing anything, with the command that installs it."
    env = {**docs.environment(), 'PATH': str(Path(sys.executable).parent)}
    if docs.find_quarto(env): pytest.skip('quarto is installed beside python')
    r = subprocess.run([sys.executable, DOCS, '--out', tmp_path/'site', '--work', tmp_path/'work'], capture_output=True,
                       text=True, env=env)
    assert r.returncode == 3 and 'pip install -e ".[docs]"' in r.stderr
    assert not (tmp_path/'work').exists() and not (tmp_path/'site').exists()
