"`gaokerena run` on the tiny profile: every chapter runs under papermill, records its ledger rows and metrics."
import json, shutil, subprocess, sys
import pytest
from pathlib import Path
from conftest import ROOT
from gaokerena.config import CHAPTERS, load_settings
from gaokerena.cli import main, run_chapters
from gaokerena.ledger import read_ledger
from gaokerena.world import build_world

LEDGER_FIELDS = {'stage', 'status', 'start', 'end', 'wall_s', 'device', 'gpu_name', 'gpu_hours', 'price_per_hour',
                 'cost_usd', 'peak_mem_gb', 'tokens', 'seeds', 'versions', 'git_commit', 'carbon_kg'}
STAGES = {'00_data', '01_sft.pretrain', '01_sft.instruct', '02_eval', '02_eval.freeform', '03_rlaif.pairs', '03_rlaif.dpo',
          '04_passk', '04_passk.before', '05_grpo.before', '05_grpo.train', '05_grpo.after'}


def test_every_chapter_ran(tiny_run):
    run_dir, report = tiny_run
    assert [r['chapter'] for r in report] == list(CHAPTERS) and all(r['status'] == 'ran' for r in report)
    for ch in CHAPTERS: assert (run_dir/'notebooks'/f'{ch}.ipynb').exists()


def test_ledger_has_one_row_per_stage(tiny_run):
    run_dir, _ = tiny_run
    led = read_ledger(run_dir)
    assert sorted(led['stage']) == sorted(STAGES)
    assert LEDGER_FIELDS <= set(led.columns)
    assert (led['status'] == 'ok').all() and (led['wall_s'] > 0).all() and (led['device'] == 'cpu').all()
    assert (led['cost_usd'] == 0).all() and (led['gpu_hours'] == 0).all()
    assert all(v['torch'] and v['transformers'] and v['trl'] for v in led['versions'])
    train = led.set_index('stage').loc[['01_sft.pretrain', '01_sft.instruct', '05_grpo.train']]
    assert (train['tokens'] > 0).all()
    assert led.set_index('stage').loc['00_data', 'seeds'] == {'sample_split': 0}


def test_stage_outputs(tiny_run):
    run_dir, _ = tiny_run
    data = json.loads((run_dir/'data'/'summary.json').read_text())
    from gaokerena.report import chapter_report
    assert {p.name for p in chapter_report(run_dir, '00_data').figures} >= {'lengths.png', 'sources.png'}
    assert data['mcq']['kept'] >= 100 and data['qa_train']['kept'] + data['qa_test']['kept'] >= 120
    sft = json.loads((run_dir/'01_sft'/'metrics.json').read_text())
    assert sft['pretrain']['last_loss'] < sft['pretrain']['first_loss']
    ev = json.loads((run_dir/'02_eval'/'metrics.json').read_text())
    assert ev['log-likelihood']['pooled']['n'] == len(build_world()['mcq']) and ev['model'] == 'tiny+phase1'
    judged = ev['freeform']['mf3qa']['judge']
    assert judged['verdicts'] == 2 * judged['questions'] > 0 and ev['comparison'] == {}
    rl = json.loads((run_dir/'03_rlaif'/'metrics.json').read_text())
    assert rl['pairs_for_dpo'] >= 2 and (Path(rl['adapter'])/'adapter_config.json').exists()
    assert Path(rl['adapter']).parent.parent == run_dir/'03_rlaif'/'dpo'          # dpo/<fingerprint of its spec>/adapter
    assert ev['letter_agreement']['all']['questions'] == len(build_world()['mcq'])
    pk = json.loads((run_dir/'04_passk'/'metrics.json').read_text())
    assert pk['model'].endswith('+dpo') and len(pk['pass_at_k']['ibmsee']) == 3 and (run_dir/'04_passk'/'passk.png').exists()
    assert (run_dir/'05_grpo'/'summary.json').exists() and (run_dir/'05_grpo'/'grpo_curves.png').exists()   # its effect: below


def test_phase1_teaches_the_world(tiny_run):
    "Continued pre-training teaches the facts; instruction tuning makes the model answer: from no readable answer to most right."
    run_dir, _ = tiny_run
    sft = json.loads((run_dir/'01_sft'/'metrics.json').read_text())
    assert sft['pretrain']['last_loss'] < 0.3 * sft['pretrain']['first_loss'] and sft['instruct']['last_loss'] < 0.1
    assert set(sft['cloze']) == {'base', 'stage 1'} and sft['cloze']['stage 1']['trained'] >= sft['cloze']['base']['trained']
    ba = json.loads((run_dir/'02_eval'/'metrics.json').read_text())['before_after']
    base, phase1 = ba['tiny'], ba['tiny+phase1']
    assert base['format_rate'] <= 0.2 and base['accuracy'] <= 0.3                     # a random model: no answer, at most chance
    assert phase1['format_rate'] >= 0.85 and phase1['accuracy'] >= max(0.55, base['accuracy'] + 0.3)
    assert phase1['accuracy (trained)'] >= 0.75 and phase1['accuracy (trained)'] > phase1['accuracy (held_out)']
    samples = json.loads((run_dir/'02_eval'/'samples.json').read_text())
    assert {x['model'] for x in samples} == {'tiny', 'tiny+phase1'} and all('[?]' not in x['question (english)'] for x in samples)
    assert any(x['model'] == 'tiny+phase1' and x['read'] == x['gold'] and '[?]' not in x['english'] for x in samples)


def test_rlaif_dpo_improves_chains_of_thought(tiny_run):
    "The scripted teacher's corrections, learnt by DPO, raise self-consistency accuracy on the exam over the Phase-1 student's."
    run_dir, _ = tiny_run
    rl = json.loads((run_dir/'03_rlaif'/'metrics.json').read_text())
    assert rl['student'] == 'tiny+phase1' and rl['pairs']['pair'] >= 50 and rl['last_loss'] < rl['first_loss']
    ba = json.loads((run_dir/'04_passk'/'metrics.json').read_text())['before_after']
    before, after = ba['tiny+phase1'], ba['tiny+phase1+dpo']
    assert after['accuracy'] >= before['accuracy'] + 0.05, (before, after)


def test_grpo_raises_reward_and_accuracy_on_the_world(tiny_run):
    "GRPO from the world's Phase-1 student with correctness alone: the mean reward on the same 64 questions rises from the first epoch to the last, and CoT self-consistency accuracy on the exam rises."
    run_dir, _ = tiny_run
    g = json.loads((run_dir/'05_grpo'/'summary.json').read_text())
    grpo = load_settings('tiny').grpo
    assert (g['student'], g['questions'], g['steps']) == ('tiny+phase1', 64, grpo.max_steps)
    assert grpo.max_steps * grpo.per_device_train_batch_size // grpo.num_generations == 4 * 64   # four epochs: the quarters are epochs
    assert g['reward_end'] >= g['reward_start'] + 0.07, g                  # measured: about 0.68 -> 0.88
    assert g['accuracy_after'] >= g['accuracy_before'] + 3, g              # points on the exam's 173 questions; measured 67 -> 77
    assert g['after']['readable'] >= g['before']['readable'], g


def test_pad_eos_model_never_stops(tiny_run):
    "The authors' pad = EOS recipe, on this run's stage-1 model and data: its answers run on; the run's own Phase-1 model stops."
    from gaokerena.config import run_context
    from gaokerena.sources import load_prepared
    from gaokerena.evaluate import render_prompt
    from gaokerena.stages import pad_eos_runaway
    run_dir, _ = tiny_run
    ctx = run_context('tiny', run_dir)
    r = pad_eos_runaway(ctx, [render_prompt(q) for q in load_prepared(ctx, 'mcq')[:48]], ctx.settings.eval.max_new_tokens)
    assert r['pad_eos'] >= 0.7 and r['pad_ok'] <= 0.2, r


def test_rerun_skips_finished_chapters(tiny_run, capsys):
    run_dir, _ = tiny_run
    outputs = sorted(run_dir.glob('*/*.ipynb'))
    stamps = [p.stat().st_mtime_ns for p in outputs]
    report = run_chapters('tiny', run_dir)
    assert all(r['status'] == 'skipped' for r in report)
    assert outputs and [p.stat().st_mtime_ns for p in outputs] == stamps
    assert len(read_ledger(run_dir)) == len(STAGES)


def test_summary_printed(tiny_run, capsys):
    run_dir, _ = tiny_run
    assert main(['run', '--run-dir', str(run_dir), '--only', '00_data']) == 0
    out = capsys.readouterr().out
    assert 'skipped' in out and '## 02_eval' in out and '## 05_grpo' in out and '"reward_end"' in out and 'cost ledger' in out


def test_unknown_chapter_is_an_error(tmp_path):
    with pytest.raises(SystemExit, match='unknown chapter'): run_chapters('tiny', tmp_path, only=['05_magic'])


def test_rlaif_notebook_alone_with_defaults(tmp_path):
    "The design card's command: `papermill nbs/03_rlaif.ipynb out.ipynb`, nothing upstream, defaults only."
    r = subprocess.run([sys.executable, '-m', 'papermill', str(ROOT/'nbs'/'03_rlaif.ipynb'), str(tmp_path/'out.ipynb'),
                        '--cwd', str(tmp_path), '--no-progress-bar'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    run_dir = tmp_path/'runs'/'tiny'
    assert len(list(run_dir.glob('03_rlaif/dpo/*/adapter/adapter_config.json'))) == 1 and (run_dir/'03_rlaif'/'dpo_curves.png').exists()
    outcomes = [json.loads(l) for l in (run_dir/'03_rlaif'/'outcomes.jsonl').read_text(encoding='utf-8').splitlines()]
    pairs = [json.loads(l) for l in (run_dir/'03_rlaif'/'pairs.jsonl').read_text(encoding='utf-8').splitlines()]
    assert len({o['id'] for o in outcomes}) == len(outcomes) == len(build_world()['medmcqa'])
    assert len(pairs) == sum(o['outcome'] == 'pair' for o in outcomes) >= 2
    assert all(p['chosen_choice'] == p['gold'] != p['student_choice'] and p['student'] == 'tiny' and p['teacher'] == 'world-teacher' for p in pairs)
    assert all({'id', 'prompt', 'chosen', 'rejected', 'gold', 'method', 'student_call', 'teacher_call'} <= set(p) for p in pairs)
    rl = json.loads((run_dir/'03_rlaif'/'metrics.json').read_text())
    assert rl['pairs_for_dpo'] + rl['dropped_by_max_length'] == len(pairs) and rl['first_loss'] > 0


# --- a real run gives the right numbers or stops ---------------------------------------------------

def copy_of(tiny_run, tmp_path) -> Path:
    "A copy of the session's tiny run folder, so that a test may add to it."
    return Path(shutil.copytree(tiny_run[0], tmp_path/'run', ignore=shutil.ignore_patterns('notebooks')))


def test_another_beta_retrains_the_dpo_adapter(tiny_run, tmp_path):
    "`gaokerena run --only 03_rlaif --set dpo.beta=5 --set dpo.learning_rate=0.5` after a run: a new adapter, the old one kept."
    run_dir = copy_of(tiny_run, tmp_path)
    before = {p: p.read_bytes() for p in run_dir.glob('03_rlaif/dpo/*/adapter/adapter_model.safetensors')}
    assert len(before) == 1
    assert main(['run', '--run-dir', str(run_dir), '--only', '03_rlaif', '--set', 'dpo.beta=5', '--set', 'dpo.learning_rate=0.5']) == 0
    dpo = read_ledger(run_dir).query("stage == '03_rlaif.dpo'").iloc[-1]['extra']
    assert dpo['resumed_from'] == 0 and dpo['train_s'] > 0, 'trained, not reloaded'
    after = {p: p.read_bytes() for p in run_dir.glob('03_rlaif/dpo/*/adapter/adapter_model.safetensors')}
    (new,) = set(after) - set(before)
    assert all(after[p] == b for p, b in before.items()) and after[new] != next(iter(before.values()))
    spec = json.loads((new.parent.parent/'spec.json').read_text())['hyperparameters']
    assert (spec['beta'], spec['learning_rate']) == (5.0, 0.5)


def test_chapter_5_runs_with_ten_samples(tiny_run, tmp_path):
    "`gaokerena run --only 04_passk --set eval.cot_samples=10` runs to the end: the vote, the verifier and pass@k take ten."
    from gaokerena.config import run_context
    from gaokerena.sources import load_benchmarks
    from gaokerena.results import ResultStore
    run_dir = copy_of(tiny_run, tmp_path)
    few = {'profile.eval_limit': 24}     # ten samples of 24 questions (spread over the benchmarks) are enough to show it
    assert main(['run', '--run-dir', str(run_dir), '--only', '04_passk', '--set', 'eval.cot_samples=10', '--set', 'profile.eval_limit=24']) == 0
    rows = ResultStore(run_dir/'04_passk'/'samples.jsonl').rows
    assert {r['sample'] for r in rows if r['task'] == 'generate/cot'} == set(range(10))
    assert any(r['task'] == 'verifier/paper' for r in rows)
    pk = json.loads((run_dir/'04_passk'/'metrics.json').read_text())
    ibmsee = load_benchmarks(run_context('tiny', run_dir, overrides=few), 24)['ibmsee']
    assert len(pk['pass_at_k']['ibmsee']) == 3 and pk['scores']['ibmsee']['self-consistency']['n'] == len(ibmsee) >= 1
