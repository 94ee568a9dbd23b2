"The Colab editions: in sync with nbs/, each with badge, pinned install, GPU check, secrets and a Drive run_dir, harmless outside Colab."
import json, os, subprocess, sys, tomllib, types
from pathlib import Path
import pytest
from packaging.requirements import Requirement
from conftest import ROOT
from gaokerena import colab
from gaokerena.config import CHAPTERS
from gaokerena.config import load_settings
from gaokerena.report import expected_costs

REGENERATE = ('run `python -m gaokerena.colab` and commit colab/ and README.md (generated files; on a merge conflict '
              'take either side and rerun it)')
SETUP_IDS = ['colab-setup', 'colab-install', 'colab-gpu-check', 'colab-secrets', 'colab-drive', 'colab-data']
SECRETS = ('HF_TOKEN', 'DEEPSEEK_API_KEY', 'OPENAI_API_KEY')   # the GPU profiles' secrets: hub, teacher, judge


def _edition(ch: str) -> dict: return json.loads((ROOT/'colab'/f'{ch}.ipynb').read_text(encoding='utf-8'))
def _src(cell: dict) -> str: return ''.join(cell['source'])


def test_generated_files_in_sync():
    assert colab.stale_files(ROOT) == [], REGENERATE


def test_out_of_sync_is_detected(tmp_path):
    "The sync check fails when a chapter changes and its edition does not."
    for f in ['pyproject.toml', 'README.md', 'colab/constraints.txt', *(f'{d}/{ch}.ipynb' for ch in CHAPTERS for d in ('nbs', 'colab'))]:
        (tmp_path/f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path/f).write_bytes((ROOT/f).read_bytes())
    assert colab.stale_files(tmp_path) == []
    nb = json.loads((tmp_path/'nbs'/'02_eval.ipynb').read_text())
    nb['cells'][-1]['source'].append('\nOne more exercise.')
    (tmp_path/'nbs'/'02_eval.ipynb').write_text(json.dumps(nb))
    assert colab.stale_files(tmp_path) == ['colab/02_eval.ipynb']
    assert colab.main(['--check', '--root', str(tmp_path)]) == 1
    assert colab.main(['--root', str(tmp_path)]) == 0 and colab.stale_files(tmp_path) == []


@pytest.mark.parametrize('ch', CHAPTERS)
def test_edition_has_badge_install_gpu_check_secrets_and_drive(ch):
    nb, chapter = _edition(ch), json.loads((ROOT/'nbs'/f'{ch}.ipynb').read_text(encoding='utf-8'))
    cells = {c['id']: _src(c) for c in nb['cells']}
    assert f'({colab.colab_url(colab.repo_url(ROOT), ch)})' in cells['colab-badge'] and 'colab-badge.svg' in cells['colab-badge']
    assert all(f'`{key}`' in cells['colab-badge'] for key in SECRETS)
    install = cells['colab-install']
    compile(install, f'colab/{ch}.ipynb#colab-install', 'exec')
    assert "if 'google.colab' in sys.modules:" in install and "'-c', src + '/colab/constraints.txt'" in install
    pins = colab.read_constraints(ROOT/'colab'/'constraints.txt')
    for p in ('torch', 'transformers', 'trl', 'peft', 'datasets'): assert f'{p} {pins[p]}' in install
    extras = colab.GPU_EXTRAS[ch]
    if extras:
        assert f"extras = '[{','.join(extras)}]' if gpu else ''" in install and 'nvidia-smi' in install
        assert nb['metadata']['accelerator'] == 'GPU'
    else: assert "extras = ''" in install and 'accelerator' not in nb['metadata']
    assert f"profile = pick_profile(profile, '{ch}')" in cells['colab-gpu-check']
    assert 'load_colab_secrets(profile, overrides)' in cells['colab-secrets'] and 'run_dir = drive_run_dir(run_dir, profile)' in cells['colab-drive']
    corpus = "'gdrive'" if ch in colab.CORPUS_CHAPTERS else 'None'
    assert f'data_dir = drive_data_dir(data_dir, profile, corpus={corpus}, overrides=overrides)' in cells['colab-data']
    own = [c for c in nb['cells'] if not c['id'].startswith('colab-')]
    assert [c['id'] for c in own] == [c['id'] for c in chapter['cells']], 'every chapter cell, in order'
    assert [_src(c) for c in own if 'parameters' not in c['metadata'].get('tags', [])] == \
           [_src(c) for c in chapter['cells'] if 'parameters' not in c['metadata'].get('tags', [])]
    params = [c for c in own if 'parameters' in c['metadata'].get('tags', [])]
    assert len(params) == 1 and _src(params[0]).startswith('profile = "auto"')
    order = [c['id'] for c in nb['cells']]
    assert order[0] == 'colab-badge' and order[order.index(params[0]['id']) + 1:][:6] == SETUP_IDS
    assert all(not c['outputs'] and c['execution_count'] is None for c in nb['cells'] if c['cell_type'] == 'code')


def _freeze() -> str:
    return subprocess.run([sys.executable, '-m', 'pip', 'freeze'], capture_output=True, text=True, check=True).stdout


def test_setup_cells_do_nothing_outside_colab(tmp_path):
    "Run an edition's first cells, up to the data cell, headless with papermill: nothing installed, mounted or written."
    nb = _edition('02_eval')
    ids = [c['id'] for c in nb['cells']]
    probe = colab._cell('code', 'probe', "import json, os\nprint('STATE', json.dumps({'profile': profile, 'run_dir': run_dir, 'data_dir': data_dir, "
                                         f"'secrets': sorted(k for k in {SECRETS!r} if k in os.environ)}}))")
    (tmp_path/'setup.ipynb').write_text(json.dumps({**nb, 'cells': nb['cells'][:ids.index('colab-data') + 1] + [probe]}))
    work = tmp_path/'work'
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in SECRETS}
    before = _freeze()
    r = subprocess.run([sys.executable, '-m', 'papermill', str(tmp_path/'setup.ipynb'), str(tmp_path/'out.ipynb'),
                        '-p', 'run_dir', 'my-run', '--cwd', str(work), '--no-progress-bar', '-k', 'python3'],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    out = ''.join(''.join(o.get('text', '')) for c in json.loads((tmp_path/'out.ipynb').read_text())['cells']
                  for o in c.get('outputs', []))
    assert 'not on Colab: nothing to install' in out and colab.NO_GPU in out
    state = json.loads(out.split('STATE ', 1)[1].splitlines()[0])
    assert state == {'profile': 'tiny', 'run_dir': 'my-run', 'data_dir': None, 'secrets': []}
    assert list(work.iterdir()) == [] and not Path('/content/gaokerena').exists() and not Path('/content/drive').exists()
    assert _freeze() == before


@pytest.fixture
def stand_in_colab(monkeypatch, tmp_path):
    "A stand-in `google.colab`: Drive mounts into a temporary folder, secrets come from a dictionary."
    secrets, mounts = {'HF_TOKEN': 'hf_not_a_real_token', 'OPENAI_API_KEY': 'sk-not-a-real-key'}, []

    class SecretNotFoundError(Exception): pass

    def get(name):
        if name not in secrets: raise SecretNotFoundError(name)
        return secrets[name]

    def mount(path):
        mounts.append(path)
        (Path(path)/'MyDrive').mkdir(parents=True)

    module = types.ModuleType('google.colab')
    module.drive, module.userdata = types.SimpleNamespace(mount=mount), types.SimpleNamespace(get=get)
    monkeypatch.setitem(sys.modules, 'google.colab', module)
    for name in SECRETS:
        monkeypatch.setenv(name, 'x')
        monkeypatch.delenv(name)
    return secrets, mounts, tmp_path/'drive'


def test_colab_branch_secrets_and_drive(stand_in_colab, tmp_path, capsys):
    secrets, mounts, drive = stand_in_colab
    assert colab.in_colab()
    assert colab.load_colab_secrets('colab-l4') == {'HF_TOKEN': True, 'DEEPSEEK_API_KEY': False, 'OPENAI_API_KEY': True}
    assert os.environ['HF_TOKEN'] == secrets['HF_TOKEN'] and 'DEEPSEEK_API_KEY' not in os.environ
    assert os.environ['OPENAI_API_KEY'] == secrets['OPENAI_API_KEY']
    out = capsys.readouterr().out
    assert secrets['HF_TOKEN'] not in out and secrets['OPENAI_API_KEY'] not in out and 'missing: DEEPSEEK_API_KEY' in out
    assert colab.load_colab_secrets('colab-l4', {'profile.judge': 'local'}) == {'HF_TOKEN': True, 'DEEPSEEK_API_KEY': False}
    assert colab.load_colab_secrets('tiny') == {}
    run_dir = colab.drive_run_dir(None, 'colab-l4', mount_point=drive)
    assert run_dir == str(drive/'MyDrive'/'gaokerena'/'runs'/'colab-l4') and Path(run_dir).is_dir()
    assert 'on Google Drive: a rerun resumes' in capsys.readouterr().out
    assert colab.drive_run_dir(None, 'colab-l4', mount_point=drive) == run_dir and len(mounts) == 1
    assert colab.drive_run_dir(str(tmp_path/'local'), 'colab-l4', mount_point=drive) == str(tmp_path/'local')
    assert 'NOT on Google Drive' in capsys.readouterr().out


def test_colab_branch_fetches_the_data_onto_drive(stand_in_colab, tmp_path, capsys):
    "On Colab a GPU profile gets the authors' repositories on Drive (local git repositories stand in for GitHub); tiny keeps its sample."
    from test_data_fetch import git_repo
    _, _, drive = stand_in_colab
    colab.drive_run_dir(None, 'colab-l4', mount_point=drive)  # the cell before mounts Drive
    urls = {'sources.repo_v': git_repo(tmp_path/'v', {'dataset/KOPP/kopp.xlsx': b'x'}), 'sources.repo_r': git_repo(tmp_path/'r', {'README.md': b'r'})}
    data_dir = colab.drive_data_dir(None, 'colab-l4', None, urls, mount_point=drive)
    assert data_dir == str(drive/'MyDrive'/'gaokerena'/'data') and (Path(data_dir)/'gaokerena-v'/'dataset'/'KOPP'/'kopp.xlsx').is_file()
    assert f'data_dir = {data_dir}' in capsys.readouterr().out
    assert colab.drive_data_dir(None, 'colab-l4', None, urls, mount_point=drive) == data_dir
    assert 'gaokerena-v: present' in capsys.readouterr().out
    assert colab.drive_data_dir(None, 'tiny', 'gdrive', urls, mount_point=drive) is None


def test_constraints_pin_every_dependency_within_its_range():
    deps = tomllib.loads((ROOT/'pyproject.toml').read_text())['project']['dependencies']
    pins = colab.read_constraints(ROOT/'colab'/'constraints.txt')
    for spec in deps:
        req = Requirement(spec)
        name = colab._canon(req.name)
        if name == colab.KERNEL:
            assert name not in pins, "Colab's kernel packages stay unpinned"
            continue
        assert name in pins, f'{name} is not in colab/constraints.txt: python -m gaokerena.colab --freeze'
        assert req.specifier.contains(pins[name], prereleases=True), f'{name}=={pins[name]} is outside {req.specifier}'


def test_ci_installs_the_pinned_versions():
    "CI tests exactly the versions the Colab editions install."
    assert '-c colab/constraints.txt' in (ROOT/'.ci'/'run').read_text()


def test_readme_costs_are_the_estimators(tmp_path, monkeypatch):
    total = next(l for l in (ROOT/'README.md').read_text().splitlines() if l.startswith('| **total** |'))
    plan = expected_costs(load_settings('colab-a100'))
    assert [c.strip() for c in total.strip('|').split('|')][2:] == [
        f"{plan.loc['total', 'L4 GPU-h']:,.1f}", f"${plan.loc['total', 'L4 $']:,.2f}",
        f"{plan.loc['total', 'A100-40GB GPU-h']:,.1f}", f"${plan.loc['total', 'A100-40GB $']:,.2f}"]
    changed = tmp_path/'settings.ini'
    changed.write_text((ROOT/'settings.ini').read_text().replace('sft_tokens_per_s@L4 = ', 'sft_tokens_per_s@L4 = 1'))
    monkeypatch.setenv('GAOKERENA_SETTINGS', str(changed))
    assert colab.readme_costs() not in (ROOT/'README.md').read_text(), 'a new throughput must change the README table'


def test_course_map_runs():
    "nbs/index.ipynb, the course map, runs as nbdev-test runs it (its cost table comes from the estimator)."
    r = subprocess.run([Path(sys.executable).parent/'nbdev-test', 'nbs/index.ipynb'], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def _exercises(text: str) -> list[str]:
    "The numbered items of the **Exercises** list of a summary cell."
    part = text.split('**Exercises**', 1)[1].split('**Going further**', 1)[0]
    return [line for line in part.splitlines() if line[:1].isdigit() and line[1:3] == '. ']


@pytest.mark.parametrize('ch', CHAPTERS)
def test_chapter_ends_with_summary_exercises_and_starters(ch):
    "A chapter ends with its summary (2-3 exercises) and one starter cell per exercise; the solutions live in nbs/solutions.ipynb."
    cells = json.loads((ROOT/'nbs'/f'{ch}.ipynb').read_text(encoding='utf-8'))['cells']
    summary = next(c for c in reversed(cells) if c['cell_type'] == 'markdown')
    starters = cells[cells.index(summary) + 1:]
    layout = (f'nbs/{ch}.ipynb must end with a "## Summary" cell listing 2-3 **Exercises** (more go under **Going further**), '
              'then one code cell per exercise starting "# Exercise N" with a TODO for the student; no solutions in the chapter')
    n = len(_exercises(_src(summary)))
    assert _src(summary).startswith('## Summary') and 2 <= n <= 3 and 'nbs/solutions.ipynb' in _src(summary), layout
    assert [c['cell_type'] for c in starters] == ['code'] * n, layout
    for i, c in enumerate(starters, 1): assert _src(c).startswith(f'# Exercise {i}:') and 'TODO' in _src(c), (layout, i)
    assert not any('# Solutions' in _src(c) for c in cells), layout
