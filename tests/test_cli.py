"`gaokerena run`'s bookkeeping: absolute folders for papermill, and fingerprints that notice what a chapter depends on."
import json
import nbformat
import psutil
import pytest
from papermill.exceptions import PapermillExecutionError
from gaokerena.config import CHAPTERS
from gaokerena.cli import chapter_params, fingerprint, run_chapters
from conftest import ROOT


def fake_chapters(folder, chapters=CHAPTERS[:2], fail=None):
    "Trivial chapters that need `data_dir/here.txt` (read from inside run_dir, papermill's cwd), find `csv` imported by the warm-up"
    " but not bound, and log each run; the chapter `fail` raises."
    folder.mkdir()
    for ch in chapters:
        nb = nbformat.v4.new_notebook(metadata={'kernelspec': {'name': 'python3', 'language': 'python', 'display_name': 'Python 3'},
                                                'language_info': {'name': 'python'}})
        params = nbformat.v4.new_code_cell("profile = 'tiny'\nrun_dir = None\ndata_dir = None\noverrides = {}")
        params.metadata['tags'] = ['parameters']
        body = nbformat.v4.new_code_cell(
            "import sys\nfrom pathlib import Path\nassert (Path(data_dir)/'here.txt').exists(), data_dir\n"
            "assert 'csv' in sys.modules and 'csv' not in globals()\n"
            f"with open(Path(run_dir)/'log.txt', 'a') as f: f.write('{ch}\\n')\n" + (f"raise ValueError('{ch} broke')" if ch == fail else ''))
        nb.cells = [params, body]
        nbformat.write(nb, folder/f'{ch}.ipynb')
    return folder


def test_relative_folders_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = chapter_params('tiny', 'runs/a', 'data', {'dpo.beta': '0.2'})
    assert p == {'profile': 'tiny', 'run_dir': str(tmp_path/'runs'/'a'), 'data_dir': str(tmp_path/'data'),
                 'overrides': {'dpo.beta': '0.2'}}
    assert chapter_params('h100')['run_dir'] == str(tmp_path/'runs'/'h100') and chapter_params()['data_dir'] is None


def test_relative_data_dir_reaches_the_notebooks_and_upstream_reruns_downstream(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    nbs = fake_chapters(tmp_path/'nbs')
    (tmp_path/'data').mkdir(); (tmp_path/'data'/'here.txt').write_text('x')
    two = list(CHAPTERS[:2])
    log = tmp_path/'run'/'log.txt'
    def statuses(**kw): return [r['status'] for r in run_chapters('tiny', 'run', 'data', two, nbs=nbs, warm=('csv',), **kw)]
    assert statuses() == ['ran', 'ran'] and log.read_text().split() == two
    assert statuses() == ['skipped', 'skipped']
    assert [r['status'] for r in run_chapters('tiny', 'run', 'data', two[:1], nbs=nbs, force=True, warm=('csv',))] == ['ran']
    assert statuses() == ['skipped', 'ran']  # 00 ran again, so 01 (downstream) is no longer done
    assert log.read_text().split() == two + two
    assert kernels() == []


def kernels() -> list:
    "The Jupyter kernels this process started that are still running."
    return [p for p in psutil.Process().children(recursive=True) if 'ipykernel' in ' '.join(p.cmdline())]


def test_a_failing_chapter_stops_the_run_and_leaves_no_kernel_behind(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    three = CHAPTERS[:3]
    nbs = fake_chapters(tmp_path/'nbs', three, fail=three[1])
    (tmp_path/'data').mkdir(); (tmp_path/'data'/'here.txt').write_text('x')
    with pytest.raises(PapermillExecutionError, match=f'{three[1]} broke'):
        run_chapters('tiny', 'run', 'data', three, nbs=nbs, warm=('csv',))
    assert (tmp_path/'run'/'log.txt').read_text().split() == list(three[:2])   # the third never ran
    assert (tmp_path/'run'/'notebooks'/f'{three[0]}.done.json').exists()
    assert not (tmp_path/'run'/'notebooks'/f'{three[1]}.done.json').exists()
    assert kernels() == []                                # the failed chapter's kernel and the warm spare are shut down


def test_fingerprint_follows_settings_code_and_upstream(tmp_path, monkeypatch):
    nb = tmp_path/'00_data.ipynb'; nb.write_text('{}')
    settings = tmp_path/'settings.ini'; settings.write_text((ROOT/'settings.ini').read_text(encoding='utf-8'), encoding='utf-8')
    monkeypatch.setenv('GAOKERENA_SETTINGS', str(settings))
    params = chapter_params('tiny', tmp_path)
    fp = fingerprint(nb, params)
    assert fingerprint(nb, params) == fp
    settings.write_text(settings.read_text(encoding='utf-8').replace('beta = 0.1', 'beta = 0.2'), encoding='utf-8')
    changed = fingerprint(nb, params)
    assert changed != fp
    marker = json.dumps({'fingerprint': 'abc', 'finished': '2026-11-25T10:00:00Z'})
    assert fingerprint(nb, params, [marker]) != changed and fingerprint(nb, params, ['']) != changed
    monkeypatch.setattr('gaokerena.cli.code_hash', lambda folder=None: 'other code')
    assert fingerprint(nb, params) != changed


def test_ci_chromium_step_tolerates_a_missing_apt_get(tmp_path):
    "The CI script's Chromium step, run where neither Chromium nor apt-get exists, warns and lets the script go on."
    import shutil, subprocess
    lines = (ROOT/'.ci'/'run').read_text().splitlines()
    start = next(i for i, l in enumerate(lines) if 'command -v chromium' in l)
    end = next(i for i in range(start, len(lines)) if lines[i] == 'fi')
    (tmp_path/'bin').mkdir()
    (tmp_path/'bin'/'bash').symlink_to(shutil.which('bash'))
    script = '\n'.join(['set -euo pipefail', *lines[start:end + 1], 'echo "went on"'])
    r = subprocess.run([str(tmp_path/'bin'/'bash'), '-c', script], capture_output=True, text=True, env={'PATH': str(tmp_path/'bin')})
    assert r.returncode == 0 and r.stdout.strip() == 'went on'
    assert 'could not install chromium' in r.stderr and 'browser test will be skipped' in r.stderr
