"Chapter 05: the rewards read Persian answers, the hand-written objective is trl's, the data leaves the benchmarks out, training resumes, and the chapter runs alone (its effect on the miniature world: tests/test_pipeline.py)."
import json, shutil, subprocess, sys
import pytest
import torch
from conftest import ROOT
from gaokerena.config import SettingsError, load_settings, run_context
from gaokerena.sources import data_spec
from gaokerena.rows import load_sample, write_jsonl
from gaokerena.generation import prompt_lengths
from gaokerena.grpo import (correctness_reward, fit_prompts, format_reward, group_advantages, grpo_config, grpo_folder, grpo_loss,
                            grpo_questions, grpo_recipe, grpo_rewards, grpo_rows, grpo_trainer, grpo_vllm, readings, token_logps,
                            train_grpo)
from gaokerena.stores import SPEC_FILE, keyed_folder, write_json

Q = {'question': 'کدام عصب دلتوئید را عصب‌دهی می‌کند؟',                       # "which nerve supplies the deltoid?"
     'options': {'A': 'آگزیلاری', 'B': 'رادیال', 'C': 'اولنار', 'D': 'مدیان'}}   # axillary, radial, ulnar, median
# (completion, what the extractor must read); every Persian form glossed
FORMS = [('پاسخ صحیح: گزینه [C]', 'C'),                                          # "the correct answer: option [C]"
         ('گزینه ج', 'C'),                                                      # "option C" (the Persian letter jim)
         ('**C**', 'C'),                                                        # bold
         ('بنابراین گزینه ۳ درست است.', 'C'),                                   # "so option 3 is right" (Persian digit)
         ('پاسخ نهایی: گزینه ٣', 'C'),                                          # "final answer: option 3" (Arabic-Indic digit)
         ('عصب اولنار از شبکه بازویی است اما دلتوئید را عصب‌دهی نمی‌کند. پاسخ صحیح: گزینه [A]', 'A'),  # "the ulnar nerve ... does not supply the deltoid. the correct answer: option [A]"
         ('پاسخ صحیح: گزینه [A] و [C]', 'multiple'),                            # "the correct answer: option [A] and [C]": two answers
         ('نمی‌دانم کدام گزینه درست است.', 'invalid'),                          # "I don't know which option is right": no answer
         ('', 'invalid')]


def chat(texts): return [[{'role': 'assistant', 'content': t}] for t in texts]
def columns(n, gold='C'): return dict(gold=[gold] * n, question=[Q['question']] * n, options=[Q['options']] * n)


def test_rewards_read_persian_answer_forms():
    texts, read = zip(*FORMS)
    cols = columns(len(texts))
    assert readings(chat(texts), cols['question'], cols['options']) == list(read)
    assert correctness_reward(chat(texts), **cols) == [float(r == 'C') for r in read]
    assert format_reward(chat(texts), **cols) == [float(r in 'ABCD' and len(r) == 1) for r in read]
    assert correctness_reward(list(texts), **cols) == correctness_reward(chat(texts), **cols)   # plain-text completions too
    # the other gold: the same completions, other rewards; no answer and two answers earn nothing either way
    assert correctness_reward(chat(texts), **columns(len(texts), 'A')) == [0, 0, 0, 0, 0, 1, 0, 0, 0]


def test_reward_weights_and_the_overlong_penalty():
    g = load_settings('colab-a100').grpo
    funcs, weights = grpo_rewards(g)
    assert [f.__name__ for f in funcs] == ['correctness_reward', 'format_reward'] and weights == [1.0, 0.0]
    g = load_settings('colab-a100', {'grpo.overlong_buffer': 256, 'grpo.format_weight': 0.1}).grpo
    funcs, weights = grpo_rewards(g)
    assert weights == [1.0, 0.1, 1.0]
    lengths = [100, 768, 896, 1024]                 # free up to 1024 - 256 = 768, then a linear penalty to -1 at 1024
    assert funcs[2](completion_ids=[[1] * n for n in lengths]) == pytest.approx([0.0, 0.0, -0.5, -1.0])
    assert grpo_config(load_settings('tiny', {'grpo.overlong_buffer': 4}), '/tmp/x').reward_weights == [1.0, 0.0, 1.0]   # tiny: correctness alone


def test_settings_reach_trl_and_fail_by_name(tmp_path):
    s = load_settings('colab-a100', {'grpo.beta': 0.04, 'grpo.loss_type': 'dr_grpo', 'grpo.scale_rewards': 'none',
                                     'profile.bf16': False})   # transformers refuses bf16 without a GPU
    c = grpo_config(s, tmp_path)
    assert (c.num_generations, c.max_completion_length, c.beta, c.loss_type, c.scale_rewards, c.epsilon, c.learning_rate) == \
           (8, 1024, 0.04, 'dr_grpo', 'none', 0.2, 1e-5)
    assert (c.per_device_train_batch_size * c.gradient_accumulation_steps, c.generation_batch_size, c.reward_weights) == (64, 64, [1.0, 0.0])
    assert c.vllm_max_model_length == s.grpo.max_length and not c.use_vllm and c.gradient_checkpointing
    with pytest.raises(SettingsError, match=r'\[grpo\] num_generations: .* must hold whole groups of 6'):
        load_settings('colab-a100', {'grpo.num_generations': 6})
    with pytest.raises(SettingsError, match=r"\[grpo\] loss_type: 'ppo' is not one of"): load_settings('tiny', {'grpo.loss_type': 'ppo'})
    with pytest.raises(SettingsError, match=r'\[grpo\] temperature: 0.0 is outside \(0, inf\)'): load_settings('tiny', {'grpo.temperature': 0})
    with pytest.raises(SettingsError, match=r'\[grpo\] overlong_buffer: 2048 is more than max_completion_length'):
        load_settings('colab-a100', {'grpo.overlong_buffer': 2048})


def test_vllm_only_where_it_can_run():
    "GRPO samples with colocated vLLM only on a GPU where vLLM is installed, and never on 4-bit weights."
    assert not grpo_vllm(load_settings('tiny')) and not grpo_vllm(load_settings('colab-a100'))   # no vLLM, no GPU here
    with pytest.raises(SettingsError, match='4-bit'): grpo_vllm(load_settings('colab-l4', {'profile.use_vllm': 'true'}))
    with pytest.raises(RuntimeError, match='vLLM or a CUDA GPU is missing'): grpo_vllm(load_settings('colab-a100', {'profile.use_vllm': 'true'}))


def test_questions_leave_the_benchmarks_out(tmp_path):
    "Evaluated questions are set aside by id, and a question sharing a word 13-gram with one of them by 00_data's check."
    sample = {'profile.data_source': 'sample'}        # the bundled sample's questions, long enough for 13-grams
    ctx = run_context('tiny', tmp_path, overrides=sample)
    mcq = load_sample('mcq')
    bench = {'anatomy': mcq[:3]}
    copied = {**mcq[10], 'id': 'copy', 'question': mcq[1]['question'] + ' ' + mcq[10]['question']}   # quotes a benchmark question
    write_jsonl(mcq[:12] + [copied], ctx.stage_dir('data')/'mcq.jsonl')      # what 00_data prepared for this run, with its spec
    write_json(ctx.run_dir/'data'/'spec.json', data_spec(ctx))
    kept, report = grpo_questions(ctx, bench)
    assert [q['id'] for q in kept] == [q['id'] for q in mcq[3:12]]
    assert report == {'phase-2 questions': 13, 'evaluated here': 3, 'sharing a 13-gram with a benchmark': 1, 'kept': 9}
    limited, _ = grpo_questions(run_context('tiny', tmp_path, overrides={**sample, 'profile.grpo_limit': 4}), bench)
    assert [q['id'] for q in limited] == [q['id'] for q in kept[:4]]


def test_rows_and_long_prompts(tiny_parts):
    tok, _ = tiny_parts
    rows = grpo_rows(load_sample('mcq')[:6])
    assert rows[0]['prompt'][0]['role'] == 'user' and '## گزینه ها' in rows[0]['prompt'][0]['content']   # "## options"
    assert (rows[0]['gold'], rows[0]['options']) == (load_sample('mcq')[0]['gold'], load_sample('mcq')[0]['options'])
    lengths = prompt_lengths(tok, [r['prompt'][0]['content'] for r in rows])     # the chat prompt, as trl will tokenize it
    room = sorted(lengths)[2]
    g = load_settings('tiny', {'grpo.max_length': room + 16, 'grpo.max_completion_length': 16}).grpo
    kept, report = fit_prompts(rows, tok, g)
    assert kept == [r for r, n in zip(rows, lengths) if n <= room] and len(kept) == 6 - report['prompt too long'] >= 3
    assert report == {'rows': 6, 'kept': len(kept), 'prompt too long': 6 - len(kept), 'longest prompt': max(lengths),
                      'room for the prompt': room}


@pytest.fixture(scope='module')
def tiny_parts():
    "The tiny aya (tokenizer and a random 2-layer Cohere model) built on the fly."
    from gaokerena.models import build_tiny_model, build_tokenizer, sample_texts
    tok = build_tokenizer(sample_texts(), 3000)
    def build():
        "A random model whose next token is near-uniform (logit scale 0.125), so the completions of a group differ."
        model = build_tiny_model(tok, 64, 0)
        model.logit_scale = 0.125
        return model
    return tok, build


SMALL = {'grpo.per_device_train_batch_size': 8, 'grpo.num_generations': 4, 'grpo.max_completion_length': 8,
         'grpo.lora_dropout': 0.0, 'grpo.logging_steps': 1, 'grpo.lr_scheduler_type': 'constant'}


@pytest.mark.parametrize('loss_type', ['grpo', 'dapo', 'dr_grpo', 'bnpo'])
@pytest.mark.parametrize('beta', [0.0, 0.04])
def test_hand_loss_is_trls(tiny_parts, tmp_path, loss_type, beta):
    "One group of four completions, the policy moved since sampling (ratios off 1, some clipped), a reference: our loss and gradient are trl's."
    tok, build = tiny_parts
    s = load_settings('tiny', {**SMALL, 'grpo.loss_type': loss_type, 'grpo.beta': beta})
    trainer = grpo_trainer(build(), tok, grpo_rows(load_sample('mcq')[:2]), s, tmp_path)
    trainer.current_gradient_accumulation_steps = 1
    model = trainer.model.train()
    g = torch.Generator().manual_seed(0)
    prompt = torch.tensor([[5, 6, 7, 8, 9]] * 4)
    completion = torch.randint(10, len(tok), (4, 8), generator=g)
    mask = torch.tensor([[1] * 8, [1] * 5 + [0] * 3, [1] * 7 + [0], [1] * 2 + [0] * 6])
    attention = torch.cat([torch.ones_like(prompt), mask], 1)
    advantages = group_advantages(torch.tensor([1., 0., 0., 1.]), 4)
    with torch.no_grad(): now = token_logps(model, prompt, completion, attention, s.grpo.temperature)
    old, ref = now + 0.3 * torch.randn(now.shape, generator=g), now + 0.2 * torch.randn(now.shape, generator=g)
    ratio = torch.exp(now - old)
    assert ((ratio > 1.2) | (ratio < 0.8))[mask.bool()].any()          # some tokens are clipped
    inputs = dict(prompt_ids=prompt, prompt_mask=torch.ones_like(prompt), completion_ids=completion, completion_mask=mask,
                  advantages=advantages, old_per_token_logps=old, ref_per_token_logps=ref, num_items_in_batch=mask.sum())
    theirs = trainer._compute_loss(model, inputs)
    grads_theirs = torch.autograd.grad(theirs, [p for p in model.parameters() if p.requires_grad])
    ours = grpo_loss(token_logps(model, prompt, completion, attention, s.grpo.temperature), old, advantages, mask, s.grpo.epsilon, beta, ref,
                     loss_type, s.grpo.max_completion_length)
    grads_ours = torch.autograd.grad(ours, [p for p in model.parameters() if p.requires_grad])
    # float32: trl takes logsumexp from the scaled logits, we take log_softmax; at T = 0.5 the two round apart by ~2e-7
    assert float(ours) == pytest.approx(float(theirs), rel=1e-5, abs=1e-6)
    assert abs(float(theirs)) > 1e-3
    assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-7) for a, b in zip(grads_ours, grads_theirs))


@pytest.mark.parametrize('scale', ['group', 'batch', 'none'])
def test_group_advantages_are_trls(tiny_parts, tmp_path, scale):
    "trl samples two groups and scores them (a reward that varies with the text); its advantages are `group_advantages` of its rewards."
    from datasets import Dataset
    from trl import GRPOTrainer
    from gaokerena.grpo import completion_text
    tok, build = tiny_parts
    s = load_settings('tiny', {**SMALL, 'grpo.scale_rewards': scale, 'grpo.num_generations': 4})
    def length_reward(completions, **kw): return [float(len(completion_text(c)) % 7) for c in completions]
    rows = grpo_rows(load_sample('mcq')[:2])
    args = grpo_config(s, tmp_path)
    args.reward_weights = None                     # one reward of weight 1
    trainer = GRPOTrainer(model=build(), reward_funcs=[length_reward], args=args, processing_class=tok,
                          train_dataset=Dataset.from_list(rows))
    trainer.model.train()
    out = trainer._generate_and_score_completions([rows[0]] * 4 + [rows[1]] * 4)
    rewards = torch.tensor(trainer._logs['rewards']['length_reward'])
    assert rewards.std() > 0
    assert torch.allclose(out['advantages'], group_advantages(rewards, 4, scale), atol=1e-5)


def test_training_resumes_like_one_run_and_reloads(tiny_parts, tmp_path):
    "A run that lost its last checkpoint goes on from the one before and logs the uninterrupted run's rewards and losses; a finished run only reloads."
    tok, build = tiny_parts
    rows = grpo_rows(load_sample('mcq')[:6])
    s = load_settings('tiny', {**SMALL, 'grpo.save_steps': 2, 'grpo.max_steps': 4, 'grpo.overlong_buffer': 8})  # shorter completions score higher
    whole = train_grpo(build(), tok, rows, s, keyed_folder(tmp_path/'a', {'run': 'one'}))
    cut = keyed_folder(tmp_path/'b', {'run': 'one'})
    train_grpo(build(), tok, rows, s, cut)
    shutil.rmtree(cut/'checkpoint-4'); shutil.rmtree(cut/'adapter')      # a disconnect after step 3: checkpoint-2 is the newest
    resumed = train_grpo(build(), tok, rows, s, cut)
    logged = lambda r, k: [h[k] for h in r.history if k in h]
    assert resumed.resumed_from == 2 and logged(resumed, 'step')[:4] == [1, 2, 3, 4]
    assert max(logged(whole, 'loss')) - min(logged(whole, 'loss')) > 1e-4        # it learns something, step to step
    for key in ('reward', 'loss', 'completions/mean_length', 'entropy'):
        assert logged(resumed, key) == pytest.approx(logged(whole, key), abs=1e-6), key
    again = train_grpo(build(), tok, rows, s, cut)
    assert (again.resumed_from, again.train_s) == (4, 0.0)
    adapter = lambda r: {k: v for k, v in r.model.state_dict().items() if 'lora_B' in k}
    assert all(torch.equal(adapter(again)[k], adapter(resumed)[k]) for k in adapter(resumed))
    assert json.loads((cut/'log_history.json').read_text()) == again.history
    with pytest.raises(ValueError, match='records its spec'): train_grpo(build(), tok, rows, s, tmp_path/'bare')
    with pytest.raises(ValueError, match='no questions'): train_grpo(build(), tok, [], s, keyed_folder(tmp_path/'c', {}))


def test_each_spec_trains_in_its_own_folder(tmp_path):
    "Other settings or other questions give another keyed folder, never a stale resume; how often it logs or saves, or vLLM's memory, do not."
    rows = grpo_rows(load_sample('mcq')[:4])
    folder = grpo_folder(run_context('tiny', tmp_path), rows)
    assert folder.parent == tmp_path/'05_grpo'/'grpo' and (folder/SPEC_FILE).exists()
    spec = json.loads((folder/SPEC_FILE).read_text())
    assert spec['stage'] == 'GRPOStage' and spec['hyperparameters']['num_generations'] == 8 and spec['base']['base']['model'] == 'tiny'
    same = {'grpo.logging_steps': 5, 'grpo.save_steps': 3, 'grpo.vllm_gpu_memory_utilization': 0.5}
    assert grpo_folder(run_context('tiny', tmp_path, overrides=same), rows) == folder
    for other in ({'grpo.learning_rate': 1e-3}, {'grpo.max_steps': 61}, {'grpo.format_weight': 1.0}, {'grpo.beta': 0.04}):
        assert grpo_folder(run_context('tiny', tmp_path, overrides=other), rows) != folder, other
    assert grpo_folder(run_context('tiny', tmp_path), rows[:3]) != folder
    recipe = grpo_recipe(run_context('tiny', tmp_path), rows)
    assert (recipe.base, recipe.merged, recipe.adapters, recipe.name) == ('tiny', (), (folder/'adapter',), 'tiny+grpo')


def test_grpo_stage_of_the_launcher(tmp_path):
    "`python -m gaokerena.train grpo` trains the stage in its own process; the chapter's function then only reloads it."
    over = {**SMALL, 'grpo.max_steps': 2, 'grpo.save_steps': 1, 'profile.eval_limit': 7}
    cmd = [sys.executable, '-m', 'gaokerena.train', 'grpo', '--profile', 'tiny', '--run-dir', str(tmp_path)]
    cmd += [a for k, v in over.items() for a in ('--set', f'{k}={v}')]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    facts = json.loads((tmp_path/'05_grpo'/'train_metrics.json').read_text())['grpo']
    assert facts['steps'] == 2 and [s for s, _ in facts['rewards']] == [1, 2] and facts['kept'] == load_settings('tiny').profile.grpo_limit
    assert len(list((tmp_path/'05_grpo'/'grpo').glob('*/adapter/adapter_config.json'))) == 1   # in the keyed folder of its spec
    rows = [json.loads(l) for l in (tmp_path/'ledger.jsonl').read_text().splitlines()]
    assert [(x['stage'], x['status']) for x in rows] == [('05_grpo.train', 'ok')]


def test_chapter_alone_with_defaults(tmp_path):
    "`papermill nbs/05_grpo.ipynb out.ipynb` on a fresh clone, nothing upstream: summary.json and the ledger rows. With no Phase-1 model the student is the random tiny model: it names no option, so every reward is 0 and GRPO has nothing to learn from."
    r = subprocess.run([sys.executable, '-m', 'papermill', str(ROOT/'nbs'/'05_grpo.ipynb'), str(tmp_path/'out.ipynb'),
                        '--cwd', str(tmp_path), '--no-progress-bar'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    run_dir, p = tmp_path/'runs'/'tiny', load_settings('tiny').profile
    summary = json.loads((run_dir/'05_grpo'/'summary.json').read_text())
    assert (summary['student'], summary['questions'], summary['steps']) == ('tiny', p.grpo_limit, load_settings('tiny').grpo.max_steps)
    assert {'reward_start', 'reward_end', 'accuracy_before', 'accuracy_after'} <= set(summary)
    assert summary['before']['readable'] < 10 and max(summary['reward_start'], summary['reward_end']) < 0.1
    rows = [json.loads(l) for l in (run_dir/'ledger.jsonl').read_text().splitlines()]
    assert [(x['stage'], x['status']) for x in rows] == [('05_grpo.before', 'ok'), ('05_grpo.train', 'ok'), ('05_grpo.after', 'ok')]
    assert rows[1]['extra']['steps'] == summary['steps'] and rows[1]['tokens'] > 0


def test_real_medmcqa_minus_the_real_benchmarks(real_data, tmp_path):
    "The authors' 17,885 filtered MedMCQA questions against the real benchmarks: none leaks; one that quotes an MMLU question is caught."
    from gaokerena.sources import load_benchmarks
    from gaokerena.rounds import medmcqa_questions
    ctx = run_context('colab-a100', tmp_path/'run', real_data)
    bench = load_benchmarks(ctx)
    kept, report = grpo_questions(ctx, bench)
    assert report == {'phase-2 questions': len(kept), 'evaluated here': 0, 'sharing a 13-gram with a benchmark': 0, 'kept': len(kept)}
    assert 17_800 < len(kept) <= 17_885
    leak = {**kept[0], 'id': 'leak', 'question': bench['professional_medicine'][5]['question']}     # an MMLU question, verbatim
    write_jsonl(kept[:300] + [leak], ctx.stage_dir('data')/'medmcqa.jsonl')                        # what 00_data would have prepared
    write_json(ctx.run_dir/'data'/'spec.json', data_spec(ctx))
    assert len(medmcqa_questions(ctx)) == 301
    few, report = grpo_questions(ctx, bench)
    assert [q['id'] for q in few] == [q['id'] for q in kept[:300]] and report['sharing a 13-gram with a benchmark'] == 1
