"bench/: every script runs in its quick mode, prints its values as `name=value` pairs on its last line and writes its results JSON; gpu.py's projection arithmetic and settings update. Timings are never asserted."
import json, shutil, subprocess, sys
import pytest
from conftest import ROOT

BENCH = ROOT/'bench'
sys.path.insert(0, str(BENCH))
FIELDS = {'script', 'measured', 'command', 'hardware', 'versions', 'git_commit', 'load_average', 'ratios'}


def run_quick(script: str, tmp_path, *extra) -> tuple[dict, dict]:
    "Run `bench/<script>.py --quick` as a user would; return (last line's pairs, results JSON) after checking both."
    out = tmp_path/f'{script}.json'
    res = subprocess.run([sys.executable, str(BENCH/f'{script}.py'), '--quick', '--out', str(out), *extra],
                         capture_output=True, text=True, cwd=tmp_path, timeout=900)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    last = res.stdout.strip().splitlines()[-1]
    pairs = dict(p.split('=', 1) for p in last.split())
    result = json.loads(out.read_text())
    assert FIELDS <= set(result) and result['script'] == script
    assert set(pairs) == set(result['ratios'])
    for k, v in result['ratios'].items():
        if isinstance(v, str): assert pairs[k] == v
        else: assert float(pairs[k]) == pytest.approx(v, rel=1e-3)
    hw = result['hardware']
    assert hw['cpu_count'] >= 1 and hw['device'] in ('cpu', 'cuda') and hw['torch_threads'] >= 1
    assert len(result['load_average']['start']) == 3 and len(result['load_average']['end']) == 3
    assert result['versions']['torch'] and result['versions']['transformers'] and result['versions']['trl']
    assert result['settings']['quick'] is True
    return pairs, result


def test_eval_throughput(tmp_path):
    pairs, r = run_quick('eval_throughput', tmp_path)
    assert {'batched_vs_sequential', 'loglik_vs_sequential', 'cot_batched_vs_sequential'} <= set(pairs)
    assert all(float(v) > 0 for v in pairs.values())
    arms = {'straight_sequential', 'straight_batched', 'loglik', 'cot_sequential', 'cot_batched'}
    assert set(r['seconds']) == set(r['cpu_seconds']) == arms
    assert all(len(t) == r['settings']['rounds'] for t in r['seconds'].values())
    s = r['settings']
    assert r['units']['straight_sequential'] == r['units']['loglik'] == s['questions']
    assert r['units']['cot_batched'] == s['cot_questions'] * s['cot_samples']
    assert r['new_tokens_from'] == 'command line' and 'not timed' in r['vllm']


def test_decoding(tmp_path):
    pairs, r = run_quick('decoding', tmp_path)
    arms = {'sequential', 'batched_dynamic', 'batched_static', 'batched_fast_decoding'}
    assert set(r['seconds']) == set(r['tokens_per_s']) == arms and all(len(t) == r['settings']['rounds'] for t in r['seconds'].values())
    assert set(pairs) == {f'{a}_vs_sequential' for a in arms - {'sequential'}} | {'fast_vs_static', 'fast_vs_dynamic'}
    assert all(float(v) > 0 for v in pairs.values())
    assert r['tokens_per_arm'] == r['settings']['questions'] * r['new_tokens']


def test_train_throughput(tmp_path):
    pairs, r = run_quick('train_throughput', tmp_path)
    assert {'packed_vs_padded', 'padding_share_padded', 'padding_share_packed', 'dpo_step_s'} <= set(pairs)
    pad = r['padding_share']
    assert pad['qa_packed'] == 0 and pad['corpus_packed'] == 0      # packed batches hold no padding at all
    assert 0 < pad['qa_padded'] < 1                                 # forum answers differ in length: padded rows pad
    assert set(r['raw']['tokens_per_s']) == {'qa_padded', 'qa_packed', 'corpus_padded', 'corpus_packed'}
    assert all(n > 0 for ts in r['raw']['tokens'].values() for n in ts)
    assert r['dpo']['steps'] == r['settings']['dpo_steps'] and r['dpo']['step_s'] > 0 and r['dpo']['pairs'] >= 4


def test_pipeline(tmp_path):
    pairs, r = run_quick('pipeline', tmp_path)
    assert set(pairs) == {'pipeline_s'} and float(pairs['pipeline_s']) > 0
    assert set(r['chapters_s']) == {'00_data'} and '00_data' in r['stages_s']
    assert r['outside_chapters_s'] >= 0 and '--only 00_data' in r['command_run']


def test_gpu_tiny_shape(tmp_path):
    pairs, r = run_quick('gpu', tmp_path)
    assert r['shape'] == 'tiny' and r['measured_on_gpu'] is False and 'not a GPU measurement' in r['note']
    assert {'sft_tokens_per_s', 'dpo_pairs_per_s', 'gen_tokens_per_s', 'loglik_questions_per_s'} <= set(pairs)
    if r['hardware']['device'] == 'cpu': assert pairs['gpu'] == 'cpu' and 'skipped' in r['sft']['unsloth']
    assert {p['task'] for p in r['projection']} == {'sft', 'dpo', 'straight', 'cot'}
    sft_a100 = next(p for p in r['projection_from_settings']
                    if (p['task'], p['gpu'], p['prices']) == ('sft', 'A100-40GB', 'paper_gpu_prices'))
    assert sft_a100['gpu_hours'] == pytest.approx(19.5, abs=0.1)    # settings' A100 throughput is the paper's run
    assert {p['task']: p['gpu'] for p in r['papers']} == {'sft': 'A100-40GB', 'dpo': 'H100', 'straight': 'L4', 'cot': 'L4'}


def test_gpu_projection_scales_by_specs():
    import gpu
    assert gpu.gpu_key('NVIDIA H100 80GB HBM3', 80) == 'H100' and gpu.gpu_key('NVIDIA A100-SXM4-40GB', 40) == 'A100-40GB'
    assert gpu.gpu_key('NVIDIA A100-SXM4-80GB', 80) == 'A100-80GB' and gpu.gpu_key(None, None) == 'cpu'
    assert gpu.speed_factor('train', 'A100-40GB', 'H100') == pytest.approx(989 / 312)
    assert gpu.speed_factor('train', 'H100', 'L4') == pytest.approx(121 / 1.3 / 989)          # 4-bit QLoRA on the L4
    assert gpu.speed_factor('decode', 'H100', 'L4') == pytest.approx((300 / 5.5) / (3350 / 16))
    measured = {'sft': 2000.0, 'dpo': 4.0, 'straight': 2.0, 'cot': 0.5}
    assert gpu.rates_on(measured, 'H100', 'H100') == measured
    from gaokerena.config import load_settings
    rows = gpu.project({g: gpu.rates_on(measured, 'H100', g) for g in gpu.PROJECT_ON}, load_settings('h100'))
    hours = {(r['task'], r['gpu']): r['gpu_hours'] for r in rows if r['prices'] == 'gpu_prices'}
    assert hours[('sft', 'H100')] == pytest.approx(57e6 / 2000 / 3600)
    assert hours[('cot', 'L4')] > hours[('cot', 'A100-40GB')] > hours[('cot', 'H100')]


def fake_gpu_result(path, device='cuda'):
    result = {'measured': '2026-11-25T10:00:00+00:00', 'hardware': {'device': device, 'gpu': 'NVIDIA H100 80GB HBM3'},
              'shape': 'aya-expanse-8b', 'measured_on_gpu': device == 'cuda', 'gpu': 'H100',
              'measured_units_per_s': {'sft': 3000.4, 'dpo': 5.25, 'straight': 4.0, 'cot': 0.8}}
    path.write_text(json.dumps(result))
    return path


def test_update_settings_writes_measured_gpu_only(tmp_path):
    import gpu
    from gaokerena.config import load_settings
    settings = shutil.copy(ROOT/'settings.ini', tmp_path/'settings.ini')
    before = settings.read_text().splitlines()
    gpu.main(['--update-settings', str(fake_gpu_result(tmp_path/'gpu.json')), '--settings', str(settings)])
    t = load_settings('h100', path=settings).throughput
    assert t['sft_tokens_per_s@H100'] == 3000 and t['dpo_pairs_per_s@H100'] == 5.25
    assert t['straight_s_per_question@H100'] == 0.25 and t['cot_s_per_sample@H100'] == 1.25
    assert t['sft_tokens_per_s@A100-40GB'] == 812 and t['straight_s_per_question@L4'] == 10   # other GPUs untouched
    after = settings.read_text().splitlines()
    assert sum(l.startswith('sft_tokens_per_s@H100') for l in after) == 1    # replaced, not added twice
    rest = iter(after)                # every other line is kept, in order (comments included)
    assert all(line in rest for line in before if '@H100' not in line)
    assert any(l.startswith('# measured by bench/gpu.py on NVIDIA H100') for l in after)


def test_update_settings_refuses_cpu_results(tmp_path):
    import gpu
    settings = shutil.copy(ROOT/'settings.ini', tmp_path/'settings.ini')
    text = settings.read_text()
    with pytest.raises(SystemExit, match='refusing'):
        gpu.main(['--update-settings', str(fake_gpu_result(tmp_path/'gpu.json', 'cpu')), '--settings', str(settings)])
    assert settings.read_text() == text


def test_reproduce(tmp_path):
    pairs, r = run_quick('reproduce', tmp_path)
    assert set(pairs) == {'screen_speedup'} and float(pairs['screen_speedup']) > 0
    assert set(r['seconds']) == {'difflib', 'screened'} and all(len(t) == r['settings']['rounds'] for t in r['seconds'].values())
    assert r['sheets'] == {'medical_genetics': 39 if r['data'] == 'authors' else 17}   # the first question skipped
    how = r['matched_how']['medical_genetics']
    assert how.get('fuzzy', 0) > how.get('unmatched', 0) and 'exact' not in how and 'position' not in how


def test_world(tmp_path):
    "The world bench in miniature: a few steps per stage, so only its plumbing is checked (every effect is tests/test_pipeline.py's)."
    pairs, r = run_quick('world', tmp_path, '--pad-questions', '8')
    required = {'mcq_acc_base', 'mcq_acc_phase1', 'format_rate_base', 'format_rate_phase1', 'cot_acc_phase1', 'cot_acc_dpo',
                'pad_eos_runaway', 'pad_ok_runaway', 'pipeline_s'}
    parts = {f'mcq_acc_phase1_{p}' for p in ('trained', 'held_out', 'chain')}   # each where the few questions hold that part
    assert required <= set(pairs) <= required | parts and 'mcq_acc_phase1_trained' in pairs
    assert all(0 <= float(pairs[k]) <= 1 for k in pairs if k != 'pipeline_s') and float(pairs['pipeline_s']) > 0
    assert set(r['straight']) == {'tiny', 'tiny+phase1'} and set(r['cot']) == {'tiny+phase1', 'tiny+phase1+dpo'}
    assert r['pad_eos_demo']['questions'] == 8 and set(r['targets']) <= set(pairs)
