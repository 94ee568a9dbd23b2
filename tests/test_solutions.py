"The exercises' solutions (nbs/solutions.ipynb, outside the chapters) run on the tiny profile and answer every exercise."
import json
import papermill as pm
from conftest import ROOT
from gaokerena.config import CHAPTERS


def _src(cell: dict) -> str: return ''.join(cell['source'])


def _exercise_count(ch: str) -> int:
    "How many exercises the chapter's summary lists."
    cells = json.loads((ROOT/'nbs'/f'{ch}.ipynb').read_text(encoding='utf-8'))['cells']
    summary = next(c for c in reversed(cells) if c['cell_type'] == 'markdown' and _src(c).startswith('## Summary'))
    part = _src(summary).split('**Exercises**', 1)[1].split('**Going further**', 1)[0]
    return sum(line[:1].isdigit() and line[1:3] == '. ' for line in part.splitlines())


def test_solutions_answer_every_exercise_of_the_tiny_run(tiny_run, tmp_path):
    "papermill runs the solutions against a finished run: no chapter runs again, and each answers every exercise, asserting it."
    run_dir, _ = tiny_run
    out = tmp_path/'solutions.ipynb'
    pm.execute_notebook(str(ROOT/'nbs'/'solutions.ipynb'), str(out), parameters={'profile': 'tiny', 'run_dir': str(run_dir)},
                        cwd=str(tmp_path), progress_bar=False, kernel_name='python3')
    cells = {c['id']: c for c in json.loads(out.read_text(encoding='utf-8'))['cells']}
    def printed(cid): return ''.join(''.join(o.get('text', '')) for o in cells[cid]['outputs'] if o.get('name') == 'stdout')
    assert all(f'[{ch}] already done for these parameters: skipped' in printed('sol-setup') for ch in CHAPTERS)
    for ch in CHAPTERS:
        answers = '\n' + printed(f'sol-{ch[:2]}')
        for i in range(1, _exercise_count(ch) + 1): assert f'\n{i}. ' in answers, (ch, i, answers)
        assert 'assert ' in _src(cells[f'sol-{ch[:2]}'])


def test_solutions_notebook_exports_nothing_and_is_no_chapter():
    nb = json.loads((ROOT/'nbs'/'solutions.ipynb').read_text(encoding='utf-8'))
    assert not any(_src(c).startswith('#| default_exp') or '#| export' in _src(c) for c in nb['cells'])
    assert 'solutions' not in CHAPTERS and not (ROOT/'gaokerena'/'solutions.py').exists()
    params = [c for c in nb['cells'] if 'parameters' in c['metadata'].get('tags', [])]
    assert len(params) == 1 and all(p in _src(params[0]) for p in ('profile = "tiny"', 'run_dir = None', 'data_dir = None', 'overrides = {}'))
