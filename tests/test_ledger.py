"Run ledger, cost estimator and carbon: rows, failures, corrupt files and the papers' numbers."
import json, re, subprocess, sys, types
import matplotlib
matplotlib.use('Agg')
import pytest
import torch
from gaokerena.config import load_settings
from gaokerena.ledger import (LedgerError, carbon_kg, estimate_cost, git_commit, ledger_summary, plot_ledger,
                              read_ledger, throughput_for, track_stage)

FIELDS = {'stage', 'status', 'error', 'profile', 'start', 'end', 'wall_s', 'device', 'gpu_name', 'n_gpus', 'n_processes', 'gpu',
          'gpu_hours', 'price_per_hour', 'api_usd', 'cost_usd', 'peak_mem_gb', 'tokens', 'tokens_per_s', 'seeds', 'versions',
          'git_commit', 'carbon_kg', 'carbon_method', 'extra'}


@pytest.fixture(scope='module')
def tiny(): return load_settings('tiny')

@pytest.fixture(scope='module')
def a100(): return load_settings('colab-a100')


def rows(run_dir): return [json.loads(l) for l in (run_dir/'ledger.jsonl').read_text().splitlines()]


def test_row_has_every_field(tmp_path, tiny, capsys):
    with track_stage(tmp_path, 'stage', tiny, seeds={'seed': 7}) as rec:
        torch.randn(64, 64).sum()
        rec.tokens, rec.extra = 1000, {'note': 'پاسخ'}
    (row,) = rows(tmp_path)
    assert set(row) == FIELDS
    assert (row['stage'], row['status'], row['error'], row['profile'], row['n_processes']) == ('stage', 'ok', None, 'tiny', 1)
    assert row['wall_s'] > 0 and row['start'] <= row['end'] and row['start'].endswith('+00:00')
    assert (row['device'], row['gpu_name'], row['n_gpus'], row['gpu']) == ('cpu', None, 0, 'cpu')
    assert row['cost_usd'] == pytest.approx(row['gpu_hours'] * row['price_per_hour'])
    assert row['price_per_hour'] == tiny.price_per_hour()
    assert 0 < row['peak_mem_gb'] < 1000
    assert row['tokens'] == 1000 and row['tokens_per_s'] == pytest.approx(1000 / row['wall_s'])
    assert row['seeds'] == {'seed': 7} and row['extra'] == {'note': 'پاسخ'}
    assert set(row['versions']) == {'python', 'torch', 'transformers', 'trl', 'peft', 'datasets', 'gaokerena'}
    assert row['versions']['python'] == '.'.join(map(str, sys.version_info[:3]))
    assert row['versions']['torch'] and row['versions']['gaokerena']
    assert row['git_commit'] is None or re.fullmatch(r'[0-9a-f]{40}', row['git_commit'])
    assert (row['carbon_kg'], row['carbon_method']) == (0, 'estimate')
    assert '[ledger] stage: ok' in capsys.readouterr().out


def test_gpu_row_prices_hours_and_uses_codecarbon(tmp_path, a100, monkeypatch):
    "On a (faked) GPU: GPU-hours, dollars and memory come from CUDA, carbon from codecarbon when importable."
    for name, fn in dict(is_available=lambda: True, device_count=lambda: 2, get_device_name=lambda i=0: 'NVIDIA A100',
                         reset_peak_memory_stats=lambda i=None: None, max_memory_allocated=lambda i=None: 3e9).items():
        monkeypatch.setattr(torch.cuda, name, fn)
    with track_stage(tmp_path, 'estimated', a100): pass
    tracker = types.SimpleNamespace(start=lambda: None, stop=lambda: 0.125)
    monkeypatch.setitem(sys.modules, 'codecarbon', types.SimpleNamespace(EmissionsTracker=lambda **kw: tracker))
    with track_stage(tmp_path, 'measured', a100): pass
    est, meas = rows(tmp_path)
    assert (est['device'], est['gpu_name'], est['n_gpus'], est['gpu'], est['peak_mem_gb']) == ('cuda', 'NVIDIA A100', 2, 'A100-40GB', 3.0)
    assert est['gpu_hours'] == pytest.approx(est['wall_s'] / 3600 * 2)
    assert est['cost_usd'] == pytest.approx(est['gpu_hours'] * 0.54)
    assert est['carbon_method'] == 'estimate'
    assert est['carbon_kg'] == pytest.approx(carbon_kg(250, est['gpu_hours'], 0.56))
    assert (meas['carbon_method'], meas['carbon_kg']) == ('codecarbon', 0.125)


def test_failing_stage_writes_row_and_reraises(tmp_path, tiny):
    with pytest.raises(KeyError):
        with track_stage(tmp_path, 'broken', tiny) as rec:
            rec.tokens = 5
            raise KeyError('missing column')
    (row,) = rows(tmp_path)
    assert (row['stage'], row['status'], row['error'], row['tokens']) == ('broken', 'failed', 'KeyError', 5)
    assert row['wall_s'] > 0


def test_two_stages_two_rows_and_summary(tmp_path, tiny):
    with track_stage(tmp_path, 'a', tiny): pass
    with pytest.raises(RuntimeError):
        with track_stage(tmp_path, 'b', tiny): raise RuntimeError
    with track_stage(tmp_path, 'a', tiny): pass
    df = read_ledger(tmp_path)
    assert list(df.stage) == ['a', 'b', 'a'] and list(df.status) == ['ok', 'failed', 'ok']
    s = ledger_summary(tmp_path)
    assert list(s.index) == ['a', 'b', 'total']
    assert list(s.runs) == [2, 1, 3] and list(s.failed) == [0, 1, 1]
    assert s.loc['total', 'wall_s'] == pytest.approx(df.wall_s.sum())
    assert set(s.columns) >= {'wall_s', 'gpu_hours', 'cost_usd', 'carbon_kg'}
    fig = plot_ledger(tmp_path)
    assert len(fig.axes) == 2 and len(fig.axes[0].patches) == 2
    matplotlib.pyplot.close(fig)


def test_corrupt_line_names_file_and_line(tmp_path, tiny):
    with track_stage(tmp_path, 'a', tiny): pass
    with open(tmp_path/'ledger.jsonl', 'a') as f: f.write('{"stage": "trunc\n')
    with pytest.raises(LedgerError, match=r'ledger\.jsonl: line 2: not valid JSON'): read_ledger(tmp_path)
    (tmp_path/'ledger.jsonl').write_text('[1, 2]\n')
    with pytest.raises(LedgerError, match=r'ledger\.jsonl: line 1: a list, not a JSON object'): read_ledger(tmp_path)


def test_git_commit(tmp_path):
    assert git_commit(tmp_path) is None
    git = ['git', '-C', str(tmp_path), '-c', 'user.name=t', '-c', 'user.email=t@t', '-c', 'commit.gpgsign=false']
    subprocess.run(git[:3] + ['init', '-q'], check=True)
    subprocess.run(git + ['commit', '-q', '--allow-empty', '-m', 'x'], check=True)
    assert re.fullmatch(r'[0-9a-f]{40}', git_commit(tmp_path))


def test_throughput_and_estimate(a100):
    assert throughput_for(a100, 'sft_tokens_per_s', 'A100-40GB') == 812
    assert throughput_for(a100, 'straight_s_per_question', 'L4') == pytest.approx(0.1)
    assert throughput_for(a100, 'cot_s_per_sample', 'L4') == pytest.approx(1 / 35)
    sft = estimate_cost(57e6, 812, 'A100-40GB', a100, prices='paper_gpu_prices')
    assert sft.text == 'this will take ≈ 19.5 GPU-hours ≈ $19.50 on A100-40GB'
    assert (sft.gpu, round(sft.hours, 2), round(sft.usd, 2)) == ('A100-40GB', 19.5, 19.5)
    assert estimate_cost(3600, 1, 'A100-40GB', a100).usd == pytest.approx(a100.price_per_hour()) == pytest.approx(0.54)
    with pytest.raises(ValueError, match='prices must be one of'): estimate_cost(1, 1, 'L4', a100, prices='cheap')
    with pytest.raises(ValueError, match="no 'sft_tokens_per_s@A100-80GB'"): throughput_for(a100, 'sft_tokens_per_s', 'A100-80GB')


def test_slides_iteration_cost(a100):
    "20 h of A100 at $1/h + 3300 questions x 10 s on an L4 at $0.5/h = $24.58 per train-and-test iteration."
    train = estimate_cost(20 * 3600, 1, 'A100-40GB', a100, prices='paper_gpu_prices')
    test = estimate_cost(3300, throughput_for(a100, 'straight_s_per_question', 'L4'), 'L4', a100, prices='paper_gpu_prices')
    assert train.usd == pytest.approx(20) and test.usd == pytest.approx(4.5833, abs=1e-4)
    iteration = train.usd + test.usd
    assert round(iteration, 2) == 24.58
    assert round(300 / iteration, 1) == 12.2 and round(6 * iteration, 1) == 147.5


def test_paper_carbon():
    assert carbon_kg(250, 19, 0.56) == pytest.approx(2.66)
