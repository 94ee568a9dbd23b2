"Past one GPU: training in two processes equals one, resumes in two; lm-eval's tasks score like the kit; the free-T4 profile fits."
import json, os, subprocess, sys
from pathlib import Path
import pytest
import torch
from safetensors.torch import load_file
from gaokerena.config import load_settings
from gaokerena.data import LETTERS, load_sample, write_jsonl
from gaokerena.evaluate import render_prompt
from gaokerena.train import launch_command

ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1', 'TOKENIZERS_PARALLELISM': 'false', 'HF_HUB_OFFLINE': '1',
       'MPLBACKEND': 'Agg', 'PATH': f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
# a few steps of each stage; no dropout, so that two runs can agree to rounding (dropout masks come from each
# process's own random stream: with dropout the runs agree only in distribution); a constant learning rate, so that
# a run stopped at step 2 and resumed to 4 follows the same schedule as one that ran 4 steps at once
STEPS = {'pretrain.max_steps': 4, 'instruct.max_steps': 3, 'dpo.max_steps': 4, 'pretrain.save_steps': 2,
         'instruct.save_steps': 2, 'dpo.save_steps': 2, 'pretrain.lora_dropout': 0, 'instruct.lora_dropout': 0,
         'dpo.lora_dropout': 0, 'dpo.lr_scheduler_type': 'constant'}
# the same global batch: 4 rows per step in one process, 2 + 2 in two
ONE = {**STEPS, **{f'{s}.per_device_train_batch_size': 4 for s in ('pretrain', 'instruct', 'dpo')}}
TWO = {**STEPS, **{f'{s}.per_device_train_batch_size': 2 for s in ('pretrain', 'instruct', 'dpo')}, 'profile.num_processes': 2}


def write_pairs(run_dir: Path):
    "Preference pairs of the bundled MCQs as chapter 03 would have written them: the gold option chosen, another rejected."
    pairs = [{'id': q['id'], 'prompt': render_prompt(q, 'cot'), 'gold': q['gold'], 'method': 'A',
              'chosen': f"{q['explanation']} پاسخ صحیح: [{q['gold']}]",                      # "the correct answer: [gold]"
              'rejected': f"پاسخ صحیح: [{next(l for l in LETTERS if l != q['gold'])}]"}     # "the correct answer: [other]"
             for q in load_sample('mcq')[:16]]
    (run_dir/'03_rlaif').mkdir(parents=True, exist_ok=True)
    write_jsonl(pairs, run_dir/'03_rlaif'/'pairs.jsonl')


def launch(stages: str, run_dir: Path, overrides: dict) -> str:
    "Run, in a shell, the command the kit prints for these settings (torchrun for two CPU processes); its output."
    cmd = launch_command(load_settings('tiny', overrides), stages, run_dir, None, overrides)
    r = subprocess.run(cmd, shell=True, env=ENV, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, cmd + '\n' + r.stdout[-3000:] + r.stderr[-5000:]
    return r.stdout


def metrics(run_dir: Path, folder: str) -> dict: return json.loads((run_dir/folder/'train_metrics.json').read_text())
def losses(run_dir: Path, folder: str, stage: str) -> list: return metrics(run_dir, folder)[stage]['losses']
def adapter(path: Path) -> dict: return load_file(path/'adapter'/'adapter_model.safetensors')


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    "The tiny SFT and DPO stages trained once in one process and once in two (same global batch); the folders and outputs."
    out = {}
    for name, over in (('one', ONE), ('two', TWO)):
        run_dir = tmp_path_factory.mktemp(name)
        write_pairs(run_dir)
        out[name] = (run_dir, launch('sft dpo', run_dir, over))
    return out


def test_launch_commands():
    "One process: python; two CPU processes: torchrun with gloo (ACCELERATE_USE_CPU); GPUs: accelerate launch with trl's config."
    assert launch_command(load_settings('tiny'), 'sft').startswith('python -m gaokerena.train sft --profile tiny')
    assert launch_command(load_settings('tiny', TWO), 'dpo').startswith(
        'ACCELERATE_USE_CPU=1 torchrun --standalone --nproc_per_node 2 -m gaokerena.train dpo')
    big = launch_command(load_settings('h100x4-32b'), 'sft', '/drive/run').split()
    assert big[:2] == ['accelerate', 'launch'] and big[3].endswith('trl/accelerate_configs/fsdp2.yaml') and Path(big[3]).is_file()
    assert big[4:6] == ['--num_processes', '4'] and big[-4:] == ['--profile', 'h100x4-32b', '--run-dir', '/drive/run']


def test_accelerate_launch_cpu_starts_one_process(tmp_path):
    "Why the CPU command is torchrun: `accelerate launch --cpu --num_processes 2` without MPI starts a single process."
    probe = tmp_path/'probe.py'
    probe.write_text("import os; print('PROCESS', os.environ.get('WORLD_SIZE'), os.environ.get('RANK'))\n")
    acc = subprocess.run([Path(sys.executable).parent/'accelerate', 'launch', '--cpu', '--num_processes', '2', str(probe)],
                         env=ENV, capture_output=True, text=True, timeout=300)
    tor = subprocess.run([Path(sys.executable).parent/'torchrun', '--standalone', '--nproc_per_node', '2', str(probe)],
                         env=ENV, capture_output=True, text=True, timeout=300)
    assert acc.returncode == 0 and tor.returncode == 0, acc.stderr[-2000:] + tor.stderr[-2000:]
    assert acc.stdout.count('PROCESS') == 1 and 'PROCESS None None' in acc.stdout
    assert sorted(l for l in tor.stdout.splitlines() if l.startswith('PROCESS')) == ['PROCESS 2 0', 'PROCESS 2 1']


@pytest.mark.parametrize('folder, stage', [('01_sft', 'pretrain'), ('01_sft', 'instruct'), ('03_rlaif', 'dpo')])
def test_two_processes_train_like_one(runs, folder, stage):
    "Same global batch, same rows in the same order: per-step losses and the adapter agree to rounding with one process."
    (one, _), (two, _) = runs['one'], runs['two']
    a, b = losses(one, folder, stage), losses(two, folder, stage)
    assert [s for s, _ in a] == [s for s, _ in b] == list(range(1, STEPS[f'{stage}.max_steps'] + 1))
    assert max(abs(x - y) for (_, x), (_, y) in zip(a, b)) < 1e-4, (a, b)
    assert max(l for _, l in a) - min(l for _, l in a) > 1e-3, a   # the loss moved step to step far more than the runs differ
    wa, wb = adapter(one/folder/stage), adapter(two/folder/stage)
    assert wa.keys() == wb.keys()
    size = torch.cat([w.flatten() for k, w in wa.items() if 'lora_B' in k]).norm()
    gap = torch.cat([(wa[k] - wb[k]).flatten() for k in wa if 'lora_B' in k]).norm()
    assert size > 1e-3 and gap < 1e-3 * size, (float(gap), float(size))


def test_only_the_main_process_writes(runs):
    "Two processes leave one adapter per stage, one ledger row per stage (saying 2 processes), one metrics file."
    run_dir, out = runs['two']
    rows = [json.loads(l) for l in (run_dir/'ledger.jsonl').read_text(encoding='utf-8').splitlines()]
    assert [(r['stage'], r['n_processes'], r['status']) for r in rows] == [
        ('01_sft.pretrain', 2, 'ok'), ('01_sft.instruct', 2, 'ok'), ('03_rlaif.dpo', 2, 'ok')]
    assert out.count('[ledger]') == 3 and out.count('trained in 2 process(es)') == 2
    assert metrics(run_dir, '01_sft')['processes'] == metrics(run_dir, '03_rlaif')['processes'] == 2
    for d in (run_dir/'01_sft'/'pretrain', run_dir/'01_sft'/'instruct', run_dir/'03_rlaif'/'dpo'):
        assert (d/'adapter'/'adapter_model.safetensors').is_file()
        last = max(d.glob('checkpoint-*'), key=lambda p: int(p.name.split('-')[1]))
        assert sorted(p.name for p in last.glob('rng_state*')) == ['rng_state_0.pth', 'rng_state_1.pth']   # both processes trained
    one_rows = (runs['one'][0]/'ledger.jsonl').read_text(encoding='utf-8').splitlines()
    assert [json.loads(l)['n_processes'] for l in one_rows] == [1, 1, 1]


def test_resume_in_two_processes(runs, tmp_path):
    "Two processes stopped after step 2 and started again go on from checkpoint-2 and draw the uninterrupted run's losses."
    write_pairs(tmp_path)
    launch('dpo', tmp_path, {**TWO, 'dpo.max_steps': 2})
    launch('dpo', tmp_path, TWO)
    resumed, whole = metrics(tmp_path, '03_rlaif')['dpo'], losses(runs['two'][0], '03_rlaif', 'dpo')
    assert resumed['resumed_from'] == 2 and [s for s, _ in resumed['losses']] == [1, 2, 3, 4]
    assert max(abs(x - y) for (_, x), (_, y) in zip(resumed['losses'], whole)) < 1e-4, (resumed['losses'], whole)
    rows = [json.loads(l) for l in (tmp_path/'ledger.jsonl').read_text(encoding='utf-8').splitlines()]
    assert [(r['stage'], r['n_processes'], r['extra']['resumed_from']) for r in rows] == [('03_rlaif.dpo', 2, 0), ('03_rlaif.dpo', 2, 2)]
