"Past one GPU: training in two processes equals one, resumes in two; lm-eval's tasks score like the kit; the free-T4 profile fits; PersianMedQA loads from a local copy of its hub layout and joins chapters 02 and 04."
import json, os, subprocess, sys
from collections import Counter
from pathlib import Path
import pytest
import torch
from safetensors.torch import load_file
from test_data_hub import card, own_datasets_cache, parquet  # noqa: F401 (an autouse fixture: a datasets cache per test)
from gaokerena.config import load_settings, run_context
from gaokerena.rows import LETTERS, DataError, load_sample, read_jsonl, write_jsonl
from gaokerena.sources import load_rows, prepare_data
from gaokerena.sources import load_benchmarks
from gaokerena.evaluate import render_prompt, score_table
from gaokerena.world import build_world
from gaokerena.train import launch_command

ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1', 'TOKENIZERS_PARALLELISM': 'false', 'HF_HUB_OFFLINE': '1',
       'MPLBACKEND': 'Agg', 'PATH': f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
# a few steps of each stage; no dropout, so that two runs can agree to rounding (dropout masks come from each
# process's own random stream: with dropout the runs agree only in distribution); a constant learning rate, so that
# a run stopped at step 2 and resumed to 4 follows the same schedule as one that ran 4 steps at once; every step logged
STEPS = {'pretrain.max_steps': 4, 'instruct.max_steps': 3, 'dpo.max_steps': 4, 'pretrain.save_steps': 2,
         'instruct.save_steps': 2, 'dpo.save_steps': 2, 'pretrain.lora_dropout': 0, 'instruct.lora_dropout': 0,
         'dpo.lora_dropout': 0, 'dpo.lr_scheduler_type': 'constant', 'pretrain.logging_steps': 1, 'instruct.logging_steps': 1,
         'dpo.logging_steps': 1, 'dpo.max_length': 1024,   # every pair kept: 16 rows, so 4 steps of 4 are the same rows however split
         'profile.rlaif_student': 'base'}                   # DPO from the base: the same student whatever SFT ran before
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


def trained(run_dir: Path, folder: str, stage: str) -> Path:
    "The one folder a stage of this run trained in: `run_dir/folder/stage/<fingerprint of its spec>`."
    (found,) = [p.parent for p in (run_dir/folder/stage).glob('*/spec.json')]
    return found


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
    # one write(2) per line: two processes printing into one pipe must not interleave inside a line
    probe.write_text("import os; os.write(1, f\"PROCESS {os.environ.get('WORLD_SIZE')} {os.environ.get('RANK')}\\n\".encode())\n")
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
    wa, wb = adapter(trained(one, folder, stage)), adapter(trained(two, folder, stage))
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
    for d in (trained(run_dir, '01_sft', 'pretrain'), trained(run_dir, '01_sft', 'instruct'), trained(run_dir, '03_rlaif', 'dpo')):
        assert (d/'adapter'/'adapter_model.safetensors').is_file()
        last = max(d.glob('checkpoint-*'), key=lambda p: int(p.name.split('-')[1]))
        assert sorted(p.name for p in last.glob('rng_state*')) == ['rng_state_0.pth', 'rng_state_1.pth']   # both processes trained
    one_rows = (runs['one'][0]/'ledger.jsonl').read_text(encoding='utf-8').splitlines()
    assert [json.loads(l)['n_processes'] for l in one_rows] == [1, 1, 1]


def test_resume_in_two_processes(runs, tmp_path):
    "Two processes that lost everything after step 2 and start again go on from checkpoint-2 and draw the uninterrupted run's losses."
    import shutil
    write_pairs(tmp_path)
    launch('dpo', tmp_path, TWO)
    folder = trained(tmp_path, '03_rlaif', 'dpo')
    for lost in (folder/'checkpoint-4', folder/'adapter'): shutil.rmtree(lost)   # as if the machine went away after step 2
    launch('dpo', tmp_path, TWO)
    resumed, whole = metrics(tmp_path, '03_rlaif')['dpo'], losses(runs['two'][0], '03_rlaif', 'dpo')
    assert resumed['resumed_from'] == 2 and [s for s, _ in resumed['losses']] == [1, 2, 3, 4]
    assert max(abs(x - y) for (_, x), (_, y) in zip(resumed['losses'], whole)) < 1e-4, (resumed['losses'], whole)
    rows = [json.loads(l) for l in (tmp_path/'ledger.jsonl').read_text(encoding='utf-8').splitlines()]
    assert [(r['stage'], r['n_processes'], r['extra']['resumed_from']) for r in rows] == [('03_rlaif.dpo', 2, 0), ('03_rlaif.dpo', 2, 2)]
    assert trained(tmp_path, '03_rlaif', 'dpo') == folder           # the same spec: the same folder, its checkpoint resumed


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    "A tiny-profile run: its model saved in a local folder (`tiny_base_dir`), loaded, and its benchmarks."
    from gaokerena.config import run_context
    from gaokerena.sources import load_benchmarks
    from gaokerena.models import tiny_model_and_tokenizer
    ctx = run_context('tiny', tmp_path_factory.mktemp('harness'))
    model, tokenizer = tiny_model_and_tokenizer(ctx)
    return ctx, model.eval(), tokenizer, load_benchmarks(ctx)


def lm_eval_run(ctx, tasks: list[str], folder: Path, **kw) -> dict:
    "lm-eval's own evaluation of exported `tasks` with its HFLM on the local tiny model folder, in the chat template."
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager
    from gaokerena.models import tiny_base_dir
    lm = HFLM(pretrained=str(tiny_base_dir(ctx)), device='cpu', batch_size=8, dtype='float32')
    return simple_evaluate(model=lm, tasks=tasks, task_manager=TaskManager(include_path=str(folder)), apply_chat_template=True,
                           log_samples=True, **kw)


def test_lm_eval_letter_tasks_score_like_the_kit(tiny, tmp_path):
    "On every question lm-eval's multiple_choice task gives the kit's letter log-probabilities, answer and accuracy."
    from gaokerena.evalrun import evaluate_mcq
    from gaokerena.results import ResultStore
    from gaokerena.harness import export_tasks
    ctx, model, tokenizer, benchmarks = tiny
    export_tasks(benchmarks, tmp_path/'tasks', ctx.settings)
    res = lm_eval_run(ctx, [f'gaokerena_{b}' for b in benchmarks], tmp_path/'tasks')
    store, answers, seen = ResultStore(tmp_path/'kit.jsonl'), [], set()
    for b, questions in benchmarks.items():
        kit = evaluate_mcq(model, tokenizer, questions, store, 'tiny', b, mode='loglik', answer_prefix=ctx.settings.eval.answer_prefix)
        theirs = {str(s['doc']['id']): [float(r[0]) for r in s['filtered_resps']] for s in res['samples'][f'gaokerena_{b}']}
        assert set(theirs) == {r['qid'] for r in kit}
        for r in kit:
            lls = theirs[r['qid']]
            assert max(abs(ll - r['logprobs'][l]) for l, ll in zip(LETTERS, lls)) < 1e-4, (b, r['qid'], lls, r['logprobs'])
            answers.append((LETTERS[lls.index(max(lls))], r['answer']))
            seen.add(round(r['logprobs']['A'], 4))
        acc = sum(r['answer'] == r['gold'] for r in kit) / len(kit)
        assert res['results'][f'gaokerena_{b}']['acc,none'] == pytest.approx(acc, abs=1e-12), b
    assert len(answers) == sum(map(len, benchmarks.values())) and all(a == b for a, b in answers)
    assert len(seen) > len(answers) // 2           # each question is scored on its own context: the match is not trivial


def test_lm_eval_cot_task_reads_answers_with_the_kit_extractor(tiny, tmp_path):
    "The CoT task samples after the kit's CoT prompt; its filter is the kit's extractor; exact match scores the extracted letter."
    from gaokerena.extract import extract_choice
    from gaokerena.evaluate import render_prompt
    from gaokerena.generation import chat_prompts
    from gaokerena.harness import export_tasks
    ctx, _, tokenizer, benchmarks = tiny
    export_tasks({'ibmsee': benchmarks['ibmsee']}, tmp_path/'tasks', ctx.settings)
    res = lm_eval_run(ctx, ['gaokerena_ibmsee_cot'], tmp_path/'tasks', limit=3)
    samples = res['samples']['gaokerena_ibmsee_cot']
    assert len(samples) == 3
    for s in samples:
        assert s['arguments'][0][0] == chat_prompts(tokenizer, [render_prompt(s['doc'], 'cot')])[0]   # what the kit's CoT run reads
        read = extract_choice(s['resps'][0][0], s['doc']['question'], s['doc']['options'])
        assert s['filtered_resps'] == [read]
        assert s['exact_match'] == float(read == s['doc']['gold'])
    assert res['configs']['gaokerena_ibmsee_cot']['generation_kwargs']['max_gen_toks'] == ctx.settings.eval.max_new_tokens


def test_free_t4_picks_tiny_aya_in_4bit(tmp_path):
    "A T4 runtime gets colab-t4: tiny-aya (the West-Asian variant, global by setting), 4-bit NF4, fp16 compute, no bf16."
    from gaokerena.colab import resolve_profile
    from gaokerena.models import hub_load_kwargs
    profile, why = resolve_profile('auto', 'Tesla T4')
    assert profile == 'colab-t4' and 'tiny-aya' in why
    s = load_settings('colab-t4')
    assert (s.profile.model_id, s.profile.gpu, s.profile.load_in_4bit, s.profile.bf16, s.profile.fp16) == (
        'CohereLabs/tiny-aya-earth', 'T4', True, False, True)
    assert load_settings('colab-t4', {'profile.model_id': 'CohereLabs/tiny-aya-global'}).profile.model_id == 'CohereLabs/tiny-aya-global'
    kw = hub_load_kwargs(s)
    q = kw['quantization_config']
    assert kw['dtype'] == torch.float16 and q.load_in_4bit and q.bnb_4bit_quant_type == 'nf4' and q.bnb_4bit_compute_dtype == torch.float16
    assert s.price_per_hour() == s.gpu_prices['T4'] > 0 and s.gpu_tdp_watts['T4'] == 70
    with pytest.raises(ValueError, match='bf16 and fp16 are both true'): load_settings('colab-t4', {'profile.bf16': True})


def test_tiny_aya_fits_a_t4():
    "tiny-aya's architecture, built offline, has its published 3.35B parameters, and every training stage of colab-t4 fits 15 GB."
    from transformers import AutoModelForCausalLM, Cohere2Config
    from gaokerena.models import TINY_AYA_SHAPE, training_memory_gb
    config = Cohere2Config(**TINY_AYA_SHAPE)
    with torch.device('meta'): model = AutoModelForCausalLM.from_config(config)
    assert type(model).__name__ == 'Cohere2ForCausalLM' and sum(p.numel() for p in model.parameters()) == 3_349_227_520
    s = load_settings('colab-t4')
    need = {stage: training_memory_gb(config, s, stage) for stage in ('pretrain', 'instruct', 'dpo', 'grpo')}
    assert all(m['total'] < 15 for m in need.values()), need
    # the same model without 4-bit and with two rows of the full 2048 tokens per DPO step would not fit: the check can fail
    big = load_settings('colab-t4', {'profile.load_in_4bit': False, 'dpo.max_length': 2048, 'dpo.per_device_train_batch_size': 2})
    assert training_memory_gb(config, big, 'dpo')['total'] > 16


def test_every_chapter_fits_a_free_t4_session():
    "At the T4 throughputs of [throughput], each stage of colab-t4 takes under two GPU-hours (a free session; chapter 6's three stages resume across sessions)."
    from gaokerena.ledger import throughput_for
    s = load_settings('colab-t4')
    p, e, t = s.profile, s.eval, lambda task: throughput_for(s, task, 'T4')
    tokens = sum(st.max_steps * st.per_device_train_batch_size * st.gradient_accumulation_steps * st.max_length
                 for st in (s.pretrain, s.instruct))
    hours = {'01_sft': tokens / t('sft_tokens_per_s'),
             '02_eval': 2 * p.eval_limit / t('straight_s_per_question') + 2 * p.eval_limit * e.judge_max_tokens / e.max_new_tokens / t('straight_s_per_question'),
             '03_rlaif': 2 * p.rlaif_limit / t('cot_s_per_sample') + p.rlaif_limit / t('dpo_pairs_per_s'),
             '04_passk': (e.cot_samples + 1) * p.eval_limit / t('cot_s_per_sample')}
    g = s.grpo
    hours |= {'05_grpo.before': hours['04_passk'], '05_grpo.after': hours['04_passk'],   # chapter 5's evaluation, twice
              '05_grpo.train': g.max_steps * g.per_device_train_batch_size * g.gradient_accumulation_steps / g.num_generations
                               / t('grpo_s_per_question')}
    hours = {ch: seconds / 3600 for ch, seconds in hours.items()}
    assert all(0 < h < 2 for h in hours.values()), hours
    assert all(st.max_steps > 0 for st in (s.pretrain, s.instruct, s.grpo)) and p.eval_limit and p.rlaif_limit
    assert g.max_completion_length == e.max_new_tokens and g.max_length >= 2 * g.max_completion_length


def test_vllm_splits_a_model_over_the_profile_gpus(tmp_path):
    "The evaluation's vLLM engine gets the profile's tensor_parallel_size (tests/test_vllm.py starts the engine on a stand-in)."
    from gaokerena.config import run_context
    from gaokerena.generation import vllm_engine_kwargs
    big = vllm_engine_kwargs(run_context('h100x4-32b', tmp_path), 'CohereLabs/aya-expanse-32b', None)
    assert big['tensor_parallel_size'] == 4 and big['model'] == 'CohereLabs/aya-expanse-32b' and 'enable_lora' not in big
    assert vllm_engine_kwargs(run_context('colab-l4', tmp_path), 'x', None)['tensor_parallel_size'] == 1


# PersianMedQA (arXiv 2506.00250): its loader on a local copy of the hub layout its card describes, and its place in chapters 02 and 04
SPECIALTIES = ('Cardiology', 'Radiology', 'Pharmacology', 'Internal Medicine', 'General Surgery', 'Pediatrics', 'Obstetrics and Gynecology',
               'Neurology', 'Psychiatry', 'Dermatology', 'Ophthalmology', 'Otolaryngology', 'Urology', 'Orthopedics', 'Anesthesiology',
               'Emergency Medicine', 'Infectious Diseases', 'Pathology', 'Medical Statistics', 'Nephrology', 'Endocrinology',
               'Gastroenterology', 'Hematology')
TEST = 5236   # the paper's test split


def pmqa_rows(n: int, split: str) -> list[dict]:
    "`n` questions as the card shows them, each in Persian and in English (its `language` column), specialties in turn."
    rows = []
    for i in range(n):
        spec = SPECIALTIES[i % len(SPECIALTIES)]
        for lang, q, opts in (('fa', f'بیمار {i} با درد قفسه سینه مراجعه کرده است؛ اقدام درست کدام است؟', [f'گزینه {k}' for k in range(4)]),
                              ('en', f'Patient {i} presents with chest pain; what is the right step?', [f'option {k}' for k in range(4)])):
            # "Patient <i> presents with chest pain; which step is right?" / "option <k>"
            rows.append({'id': f'PMQA_{split}_{i:06d}', 'question': q, 'options': opts, 'answer_idx': i % 4, 'specialty': spec,
                         'is_clinical': True, 'patient_age': 48, 'patient_gender': 'male', 'language': lang})
    return rows


def persianmedqa(folder, test: int = TEST):
    "A local copy of PersianMedQA's hub layout: train, validation and test splits of parquet files."
    card(folder, {'default': {s: parquet(folder, s, pmqa_rows(n, s)) for s, n in (('train', 46), ('validation', 23), ('test', test))}})
    return folder


def test_persianmedqa_loads_its_persian_test_split_per_specialty(tmp_path):
    ctx = run_context('tiny', tmp_path/'run', overrides={'sources.persianmedqa': str(persianmedqa(tmp_path/'pmqa'))})
    res = load_rows('persianmedqa', ctx)
    assert res.read == len(res.rows) == TEST and not res.quarantined
    assert all(r['question'].startswith('بیمار') and r['id'].startswith('PMQA_test_') for r in res.rows), 'Persian rows of the test split'
    subjects = Counter(r['subject'] for r in res.rows)
    assert len(subjects) == 23 and subjects['persianmedqa/cardiology'] == 228 and 'persianmedqa/obstetrics_and_gynecology' in subjects
    assert [r['gold'] for r in res.rows[:5]] == ['A', 'B', 'C', 'D', 'A'], 'answer_idx counts from 0'
    assert res.rows[2]['options'] == dict(zip(LETTERS, ('گزینه 0', 'گزینه 1', 'گزینه 2', 'گزینه 3')))


def test_a_test_split_unlike_the_papers_is_an_error(tmp_path):
    ctx = run_context('tiny', tmp_path/'run', overrides={'sources.persianmedqa': str(persianmedqa(tmp_path/'pmqa', TEST - 1))})
    with pytest.raises(DataError, match=r'5235 rows, but persianmedqa has 5236 in the papers.*\[hub\] persianmedqa'):
        load_rows('persianmedqa', ctx)
    with pytest.raises(DataError, match=r"no split 'dev'; found splits \['train', 'validation', 'test'\]"):
        load_rows('persianmedqa', run_context('tiny', tmp_path/'run', overrides={'sources.persianmedqa': str(tmp_path/'pmqa'),
                                                                                  'hub.persianmedqa': 'auto:dev'}))


def test_other_column_names_are_a_setting(tmp_path):
    "The card's schema is what we could read from here: other names are mapped in [hub_columns] persianmedqa."
    repo = tmp_path/'pmqa'
    rename = {'question': 'Question', 'options': 'choices', 'answer_idx': 'label', 'specialty': 'category'}
    card(repo, {'default': {'test': parquet(repo, 'test', [{rename.get(k, k): v for k, v in r.items()} for r in pmqa_rows(TEST, 'test')])}})
    over = {'sources.persianmedqa': str(repo)}
    assert Counter(r['subject'] for r in load_rows('persianmedqa', run_context('tiny', tmp_path/'run', overrides=over)).rows) == \
        {'persianmedqa/other': TEST}, 'an unknown specialty column: one group, named so'
    res = load_rows('persianmedqa', run_context('tiny', tmp_path/'run', overrides={**over, 'hub_columns.persianmedqa': 'category=subject'}))
    assert len({r['subject'] for r in res.rows}) == 23 and res.rows[1]['gold'] == 'B'


def test_persianmedqa_joins_the_benchmarks_of_chapters_02_and_04_when_asked(tmp_path):
    over = {'sources.persianmedqa': str(persianmedqa(tmp_path/'pmqa'))}
    off = run_context('tiny', tmp_path/'off', overrides=over)
    assert not any(b.startswith('persianmedqa') for b in load_benchmarks(off)) and 'persianmedqa' not in prepare_data(off)
    ctx = run_context('tiny', tmp_path/'on', overrides={**over, 'profile.persianmedqa_questions': 46})
    summary = prepare_data(ctx)
    assert summary['persianmedqa']['kept'] == TEST and len(read_jsonl(tmp_path/'on'/'data'/'persianmedqa.jsonl')) == TEST
    benchmarks = load_benchmarks(ctx)
    pmqa = {b: qs for b, qs in benchmarks.items() if b.startswith('persianmedqa/')}
    assert len(pmqa) == 23 and {len(qs) for qs in pmqa.values()} == {2}, '46 questions spread over the 23 specialties'
    assert sum(len(qs) for b, qs in benchmarks.items() if b not in pmqa) == len(build_world()['mcq']), "the world's own benchmarks stay"
    rows = [{'benchmark': b, 'qid': q['id'], 'gold': q['gold'], 'answer': 'A'} for b, qs in benchmarks.items() for q in qs]
    table = score_table(rows, n_boot=50)
    assert set(pmqa) <= set(table) and table['persianmedqa/cardiology']['n'] == 2
