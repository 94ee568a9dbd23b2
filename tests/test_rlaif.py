"RLAIF methods A and B against OpenAI-compatible servers on 127.0.0.1 whose answers the tests control; resume; DPO counts."
import json, re, shutil, subprocess, sys, threading, time
from pathlib import Path
import pytest
from conftest import ROOT
from gaokerena.config import SettingsError, load_settings, run_context
from gaokerena.evaluate import render_prompt
from gaokerena.results import ResultStore
from gaokerena.llm import OpenAIChat
from gaokerena.stages import lora_config
from gaokerena.stores import keyed_folder
from gaokerena.rlaif import STUDENT_RETRY, TEACHER_CRITIQUE, TEACHER_REWRITE, dpo_rows, tokenize_pair
from gaokerena.rounds import (PAIR_FIELDS, fit_rows, generate_pairs, pair_rows, published_pairs, rlaif_questions,
                              run_outcomes, train_dpo, dpo_trainer)
from gaokerena.teacher import make_teacher

OPTIONS = {'A': 'عصب آگزیلاری', 'B': 'عصب رادیال', 'C': 'عصب اولنار', 'D': 'عصب مدیان'}


def mcq(i: int, gold: str) -> dict:
    "A synthetic question whose text carries its number, so a scripted server can tell questions apart."
    return {'id': f'q{i}', 'subject': 'anatomy', 'question': f'پرسش ساختگی شمارهٔ {i}: کدام عصب این عضله را عصب‌دهی می‌کند؟',
            'options': OPTIONS, 'gold': gold, 'explanation': f'توضیح ساختگی {i}: عصب درست در کتاب آمده است.',
            'source': 'synthetic'}


def qnum(body: dict) -> int:
    "The number of the question a chat request is about."
    return int(re.search(r'شمارهٔ (\d+)', body['messages'][0]['content']).group(1))


def says(letter: str, words: str = 'استدلال') -> str:
    "A chain of thought that ends on `letter`."
    return f'{words} قدم به قدم ... بنابراین پاسخ صحیح: [{letter}]'


def settings(**over):
    return load_settings('tiny', overrides={'rlaif.method_b_share': 0.0, 'rlaif.max_student_retries': 3, **over})


def chat(srv, name, cache_dir, **kw):
    return OpenAIChat(srv.url, name, 'GAOKERENA_TEST_NO_KEY', cache_dir, **{'timeout': 0.5, 'max_retries': 1, **kw})


def run(questions, student, teacher, tmp_path, s, **kw):
    store = ResultStore(tmp_path/'outcomes.jsonl')
    report = generate_pairs(questions, student, teacher, store, s, **kw)
    return report, run_outcomes(store, student, teacher, questions, s, kw.get('prefill', False))


def test_method_a_pairs_teacher_rewrite_with_student_answer(serve, tmp_path):
    s = settings()
    qs = [mcq(0, 'C'), mcq(1, 'B')]
    stu = serve(lambda body: ('ok', says('A', f'دانشجو {qnum(body)}')))
    tea = serve(lambda body: ('ok', says(qs[qnum(body)]['gold'], f'بازنویسی {qnum(body)}')))
    student = chat(stu, 'student-model', tmp_path/'cache', usd_per_million_input=1000.0, usd_per_million_output=2000.0)
    teacher = chat(tea, 'teacher-model', tmp_path/'cache', usd_per_million_input=1000.0, usd_per_million_output=2000.0)
    report, outcomes = run(qs, student, teacher, tmp_path, s)
    assert (report['pair'], report['finished'], report['teacher_errors'], report['stopped_by']) == (2, 2, 0, None)
    pairs = pair_rows(outcomes)
    p = pairs[0]
    assert list(p)[:len(PAIR_FIELDS)] == list(PAIR_FIELDS)
    assert (p['id'], p['method'], p['gold'], p['prompt']) == ('q0', 'A', 'C', render_prompt(qs[0], 'cot'))
    assert (p['chosen'], p['rejected']) == (says('C', 'بازنویسی 0'), says('A', 'دانشجو 0'))
    assert (p['student_choice'], p['teacher_choice'], p['chosen_choice']) == ('A', 'C', 'C')
    assert (p['student'], p['teacher']) == ('student-model', 'teacher-model')
    assert p['student_call'] == {'prompt_tokens': 11, 'completion_tokens': 3, 'seconds': p['student_call']['seconds'],
                                 'usd': pytest.approx(0.017), 'cached': False}
    assert p['teacher_call']['completion_tokens'] == 3 and p['usd'] == pytest.approx(2 * 0.017)
    assert report['usd'] == pytest.approx(4 * 0.017) and report['tokens'] == {'in': 44, 'out': 12}
    ask = next(r['body'] for r in stu.requests if qnum(r['body']) == 0)       # asked at once: in any order
    assert ask['messages'] == [{'role': 'user', 'content': render_prompt(qs[0], 'cot')}]
    assert (ask['temperature'], ask['max_tokens'], ask['seed']) == (1.0, s.rlaif.student_max_new_tokens, s.rlaif.seed)
    told = next(r['body'] for r in tea.requests if qnum(r['body']) == 0)
    text = told['messages'][0]['content']
    assert text == TEACHER_REWRITE.format(question=qs[0]['question'], options='\n'.join(f'[{k}] : {v}' for k, v in OPTIONS.items()),
                                          gold='C', explanation=qs[0]['explanation'], student=says('A', 'دانشجو 0'),
                                          student_choice='[A]')
    assert told['max_tokens'] == s.rlaif.teacher_max_tokens and 'seed' not in told and 'prefill' not in told


def test_student_correct_needs_no_teacher(serve, tmp_path):
    stu, tea = serve(('ok', says('D'))), serve(('ok', says('D')))
    report, outcomes = run([mcq(0, 'D')], chat(stu, 'student-model', None), chat(tea, 'teacher-model', None), tmp_path, settings())
    assert (report['student_correct'], report['pair'], len(tea.requests)) == (1, 0, 0)
    assert outcomes[0]['outcome'] == 'student_correct' and 'chosen' not in outcomes[0]


def test_teacher_missing_the_gold_option_is_rejected_and_counted(serve, tmp_path):
    qs = [mcq(0, 'C'), mcq(1, 'B'), mcq(2, 'D')]
    stu = serve(('ok', says('A')))
    wrong = {0: says('B', 'بازنویسی نادرست'), 1: 'متنی بدون هیچ گزینه‌ای', 2: says('D')}
    tea = serve(lambda body: ('ok', wrong[qnum(body)]))
    report, outcomes = run(qs, chat(stu, 'student-model', None), chat(tea, 'teacher-model', None), tmp_path, settings())
    assert (report['pair'], report['teacher_missed_gold'], report['by_method']['A']['teacher_missed_gold']) == (1, 2, 2)
    assert [o['teacher_choice'] for o in outcomes] == ['B', 'invalid', 'D']
    assert [p['id'] for p in pair_rows(outcomes)] == ['q2']
    missed = outcomes[0]
    assert missed['outcome'] == 'teacher_missed_gold' and missed['teacher_text'] == wrong[0] and 'chosen' not in missed


def test_method_b_student_retries_after_critique_until_correct(serve, tmp_path):
    s = settings(**{'rlaif.method_b_share': 1.0})
    critique = '۱. عصب رادیال عضلات پشت بازو را عصب‌دهی می‌کند.\n۲. به مسیر عصب در ناحیهٔ آرنج فکر کنید.'
    retries = {s.rlaif.seed + 1: says('B', 'تلاش دوم'), s.rlaif.seed + 2: says('C', 'تلاش سوم')}
    stu = serve(lambda body: ('ok', says('A', 'تلاش اول') if len(body['messages']) == 1 else retries[body['seed']]))
    tea = serve(('ok', critique))
    report, outcomes = run([mcq(0, 'C')], chat(stu, 'student-model', None), chat(tea, 'teacher-model', None), tmp_path, s)
    (p,) = pair_rows(outcomes)
    assert (report['pair'], report['by_method']['B']['pair'], p['method']) == (1, 1, 'B')
    assert (p['chosen'], p['rejected'], p['chosen_choice']) == (says('C', 'تلاش سوم'), says('A', 'تلاش اول'), 'C')
    assert (p['teacher_text'], p['retry_choices'], len(p['retry_calls'])) == (critique, ['B', 'C'], 2)
    told = tea.requests[0]['body']['messages'][0]['content']
    assert told.startswith(TEACHER_CRITIQUE.split('\n')[0]) and 'فاش نکنید' in told and 'گزینهٔ [C]' in told
    assert len(stu.requests) == 3
    retry = stu.requests[1]['body']['messages']
    assert retry == [{'role': 'user', 'content': render_prompt(mcq(0, 'C'), 'cot')},
                     {'role': 'assistant', 'content': says('A', 'تلاش اول')},
                     {'role': 'user', 'content': STUDENT_RETRY.format(critique=critique)}]
    assert report['critiques_naming_gold'] == 0


def test_method_b_gives_up_after_max_retries_and_flags_a_leaking_critique(serve, tmp_path):
    s = settings(**{'rlaif.method_b_share': 1.0})
    stu = serve(('ok', says('A')))
    tea = serve(('ok', '۱. پاسخ صحیح: [C] است.'))
    report, outcomes = run([mcq(0, 'C')], chat(stu, 'student-model', None), chat(tea, 'teacher-model', None), tmp_path, s)
    assert (report['retries_exhausted'], report['pair'], report['critiques_naming_gold']) == (1, 0, 1)
    assert len(stu.requests) == 1 + s.rlaif.max_student_retries
    assert [r['body']['seed'] for r in stu.requests] == [s.rlaif.seed + k for k in range(4)]
    assert outcomes[0]['retry_choices'] == ['A'] * 3 and outcomes[0]['last_retry'] == says('A')


def test_reasoning_teacher_final_answer_is_chosen_and_its_trace_is_kept(serve, tmp_path):
    trace = 'The key says C. The student chose A because ... so I must argue towards the ulnar nerve.'
    stu, tea = serve(('ok', says('A'))), serve(('ok', says('C', 'بازنویسی'), trace))
    teacher = chat(tea, 'deepseek-reasoner', tmp_path/'cache')
    report, outcomes = run([mcq(0, 'C')], chat(stu, 'student-model', tmp_path/'cache'), teacher, tmp_path, settings())
    (p,) = pair_rows(outcomes)
    assert (p['chosen'], p['teacher_reasoning']) == (says('C', 'بازنویسی'), trace)
    entries = [json.loads(f.read_text(encoding='utf-8')) for f in (tmp_path/'cache').rglob('*.json')]
    assert [e['result']['reasoning'] for e in entries if e['model'] == 'deepseek-reasoner'] == [trace]


def test_failing_teacher_is_counted_not_recorded_and_retried_next_run(serve, tmp_path):
    "A 500 that persists past the client's retries, and a timeout: nothing recorded; the rerun finishes, replaying the student."
    qs = [mcq(0, 'C'), mcq(1, 'A'), mcq(2, 'B')]
    stu = serve(('ok', says('A')))
    student = chat(stu, 'student-model', tmp_path/'cache')
    down = serve((500,))
    report, outcomes = run(qs, student, chat(down, 'teacher-model', tmp_path/'cache'), tmp_path, settings())
    assert (report['teacher_errors'], report['finished'], report['student_correct']) == (2, 1, 1)
    assert len(down.requests) == 2 * 2
    assert [o['id'] for o in outcomes] == ['q1'] and len(stu.requests) == 3
    slow = serve(('sleep', 2.0))
    report, _ = run(qs, student, chat(slow, 'teacher-model', tmp_path/'cache', timeout=0.3), tmp_path, settings())
    assert (report['teacher_errors'], report['finished']) == (2, 1) and len(stu.requests) == 3
    up = serve(lambda body: ('ok', says(qs[qnum(body)]['gold'])))
    report, outcomes = run(qs, student, chat(up, 'teacher-model', tmp_path/'cache'), tmp_path, settings())
    assert (report['teacher_errors'], report['finished'], report['pair'], report['stopped_by']) == (0, 3, 2, None)
    assert len(stu.requests) == 3 and len(up.requests) == 2
    assert [o['student_call']['cached'] for o in outcomes] == [False, True, True]
    assert sorted(o['id'] for o in outcomes) == ['q0', 'q1', 'q2']


ONE_AT_A_TIME = {'rlaif.round_size': 1}


def test_too_many_failures_in_a_row_stop_the_run(serve, tmp_path):
    "One question at a time the run stops at the third failure; in rounds of four, after the round that holds it."
    stu, down = serve(('ok', says('A'))), serve((503,))
    student, teacher = chat(stu, 'student-model', None), chat(down, 'teacher-model', None, max_retries=0)
    qs = [mcq(i, 'B') for i in range(10)]
    report, _ = run(qs, student, teacher, tmp_path, settings(**ONE_AT_A_TIME), max_errors=3)
    assert (report['teacher_errors'], report['stopped_by'], len(stu.requests)) == (3, '3 failed calls in a row', 3)
    rounds = settings(**{'rlaif.round_size': 4, 'rlaif.student_batch_size': 2})
    report, _ = run(qs, student, teacher, tmp_path/'rounds', rounds, max_errors=3)
    assert report['stopped_by'] == '3 failed calls in a row' and 3 <= report['teacher_errors'] <= 4
    assert len(stu.requests) == 3 + 4 and report['finished'] == 0


@pytest.mark.parametrize('cap, value, size, finished, pairs', [
    ('max_pairs', 2, 1, 3, 2), ('max_questions', 2, 1, 2, 1), ('max_usd', 3.0, 1, 2, 1),   # one at a time: exact
    ('max_pairs', 2, 2, 4, 3), ('max_questions', 3, 4, 3, 2), ('max_usd', 3.0, 2, 2, 1)])  # rounds of 2 or 4
def test_caps_stop_the_run_and_count_earlier_runs(serve, tmp_path, cap, value, size, finished, pairs):
    "Caps hold to the question one at a time; in rounds max_questions still does, max_pairs and max_usd between rounds."
    qs = [mcq(0, 'C'), mcq(1, 'A'), mcq(2, 'B'), mcq(3, 'D'), mcq(4, 'C')]
    stu = serve(('ok', says('A')))
    tea = serve(lambda body: ('ok', says(qs[qnum(body)]['gold'])))
    student = chat(stu, 'student-model', None, usd_per_million_input=1e5)
    teacher = chat(tea, 'teacher-model', None, usd_per_million_input=1e5)
    s = settings(**{f'rlaif.{cap}': value, 'rlaif.round_size': size, 'rlaif.student_batch_size': 2})
    report, _ = run(qs, student, teacher, tmp_path, s)
    assert (report['stopped_by'], report['finished'], report['pair']) == (cap, finished, pairs)
    again, _ = run(qs, student, teacher, tmp_path, s)
    assert (again['stopped_by'], again['finished'], again['this_run']['finished']) == (cap, finished, 0)


def test_outcomes_made_otherwise_are_asked_again(serve, tmp_path, capsys):
    "RLAIF outcomes: the student's decoding is in their spec (asked again, the change named), the number of workers is not."
    qs = [mcq(0, 'C'), mcq(1, 'A'), mcq(2, 'B')]
    stu, tea = serve(('ok', says('A'))), serve(lambda body: ('ok', says(qs[qnum(body)]['gold'])))
    student, teacher = chat(stu, 'student-model', None), chat(tea, 'teacher-model', None)
    report, outcomes = run(qs, student, teacher, tmp_path, settings())
    asked = len(tea.requests)
    again, same = run(qs, student, teacher, tmp_path, settings(**{'rlaif.teacher_workers': 1, 'dpo.beta': 5}))
    assert same == outcomes and again['this_run']['finished'] == 0 and len(tea.requests) == asked
    hotter, other = run(qs, student, teacher, tmp_path, settings(**{'rlaif.student_temperature': 0.5}))
    assert hotter['this_run']['finished'] == 3 and len(ResultStore(tmp_path/'outcomes.jsonl').rows) == 6
    assert 'changed: temperature' in capsys.readouterr().out and {o['setup']['temperature'] for o in other} == {0.5}


def test_prefill_needs_a_local_teacher(serve, tmp_path):
    srv = serve(('ok', says('A')))
    with pytest.raises(SettingsError, match='teacher_prefill'):
        run([mcq(0, 'C')], chat(srv, 'student-model', None), chat(srv, 'teacher-model', None), tmp_path, settings(), prefill=True)


CHILD = '''
import json, sys
from gaokerena.config import load_settings
from gaokerena.results import ResultStore
from gaokerena.llm import OpenAIChat
from gaokerena.rounds import generate_pairs
stu, tea, work = sys.argv[1:4]
questions = json.load(open(f'{work}/questions.json', encoding='utf-8'))
s = load_settings('tiny', overrides={'rlaif.method_b_share': 0.0})
chat = lambda url, name: OpenAIChat(url, name, 'GAOKERENA_TEST_NO_KEY', f'{work}/cache', timeout=120, max_retries=0)
generate_pairs(questions, chat(stu, 'student-model'), chat(tea, 'teacher-model'), ResultStore(f'{work}/outcomes.jsonl'), s)
'''


def test_killed_generation_resumes_without_duplicates(serve, tmp_path):
    "A run killed (SIGKILL) while the teacher works on question 3 (the others concurrently): each question finishes once."
    qs = [mcq(i, g) for i, g in enumerate('CBDAC')]
    (tmp_path/'questions.json').write_text(json.dumps(qs, ensure_ascii=False), encoding='utf-8')
    release = threading.Event()
    def teacher_answer(body):
        if qnum(body) == 2 and not release.is_set(): release.wait(60)
        return ('ok', says(qs[qnum(body)]['gold']))
    stu, tea = serve(('ok', says('A'))), serve(teacher_answer)
    child = subprocess.Popen([sys.executable, '-c', CHILD, stu.url, tea.url, str(tmp_path)], cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    store = tmp_path/'outcomes.jsonl'
    try:
        for _ in range(1200):
            asked_q2 = any(qnum(r['body']) == 2 for r in tea.requests)
            if asked_q2 and store.exists() and len(store.read_text(encoding='utf-8').splitlines()) == 2: break
            if child.poll() is not None: pytest.fail(child.stderr.read().decode()[-3000:])
            time.sleep(0.1)
        else: pytest.fail('the child never reached question 2')
        child.kill()
        child.wait(30)
    finally:
        release.set()
    assert child.returncode != 0
    before = [json.loads(l)['id'] for l in store.read_text(encoding='utf-8').splitlines()]
    assert before == ['q0', 'q1']
    with open(store, 'ab') as f: f.write(b'{"id": "q2", "outc')
    asked_student, asked_teacher = len(stu.requests), len(tea.requests)
    student = OpenAIChat(stu.url, 'student-model', 'GAOKERENA_TEST_NO_KEY', tmp_path/'cache', timeout=5, max_retries=0)
    teacher = OpenAIChat(tea.url, 'teacher-model', 'GAOKERENA_TEST_NO_KEY', tmp_path/'cache', timeout=5, max_retries=0)
    report, outcomes = run(qs, student, teacher, tmp_path, settings())
    ids = [json.loads(l)['id'] for l in store.read_text(encoding='utf-8').splitlines()]
    assert ids == ['q0', 'q1', 'q2', 'q3', 'q4'] and len(set(ids)) == 5
    assert (report['finished'], report['pair'], report['student_correct'], report['this_run']['finished']) == (5, 4, 1, 3)
    assert len(stu.requests) == asked_student == 5          # the round's first answers were all stored before the kill
    again = [qnum(r['body']) for r in tea.requests[asked_teacher:]]
    assert 2 in again and set(again) <= {2, 4} and len(again) == len(set(again))   # q3's student was right; finished calls replay
    assert [o['student_call']['cached'] for o in outcomes[2:]] == [True, True, True]


@pytest.fixture(scope='module')
def tiny_parts(tmp_path_factory):
    "The tiny aya (tokenizer and a random 2-layer Cohere model) built on the fly."
    from gaokerena.models import build_tiny_model, build_tokenizer, sample_texts
    tok = build_tokenizer(sample_texts(), 3000)
    return tok, lambda: build_tiny_model(tok, 64, 0)


def synthetic_pairs(n: int) -> list[dict]:
    "Pairs of growing prompt length (prompt i repeats its question i+1 times)."
    pairs = []
    for i in range(n):
        q = mcq(i, 'C')
        q['question'] = ' '.join([q['question']] * (i + 1))
        pairs.append({'id': q['id'], 'prompt': render_prompt(q, 'cot'), 'chosen': says('C', 'عصب اولنار ' * 6),
                      'rejected': says('A', 'عصب آگزیلاری'), 'gold': 'C', 'method': 'A'})
    return pairs


@pytest.mark.parametrize('fmt', ['chat', 'plain'])
def test_our_max_length_drops_equal_trl_silent_drops(tiny_parts, tmp_path, fmt):
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer
    tok, build = tiny_parts
    rows = dpo_rows(synthetic_pairs(6), fmt)
    lengths = [len(tokenize_pair(r, tok)['prompt_ids']) for r in rows]
    max_length = sorted(lengths)[3]
    kept, fit = fit_rows(rows, tok, max_length)
    assert fit['dropped_by_max_length'] == sum(n >= max_length for n in lengths) == 3 and len(kept) == 3
    assert fit['truncated'] >= 1 and fit['tokens']['prompt'] == sum(lengths)
    args = DPOConfig(output_dir=str(tmp_path), max_length=max_length, use_cpu=True, bf16=False, report_to='none')
    trainer = DPOTrainer(model=build(), args=args, train_dataset=Dataset.from_list(rows), processing_class=tok,
                         peft_config=lora_config(load_settings('tiny').dpo))
    assert len(trainer.train_dataset) == len(kept)
    assert [r['prompt_ids'] for r in trainer.train_dataset] == [tokenize_pair(r, tok)['prompt_ids'] for r in kept]


def dpo_folder(root, s: dict, pairs) -> Path:
    "The keyed folder a DPO run of settings `s` on `pairs` trains in (the student: a tiny model built in memory)."
    from gaokerena.rounds import pairs_digest
    from gaokerena.stages import stage_spec
    settings = load_settings('tiny', overrides=s)
    return keyed_folder(root, stage_spec(settings.dpo, settings, {'model': 'tiny, built in memory'}, pairs_digest(pairs)))


def test_train_dpo_saves_checkpoints_resumes_and_reloads(tiny_parts, tmp_path):
    tok, build = tiny_parts
    over = {'dpo.max_steps': 2, 'dpo.save_steps': 1, 'dpo.per_device_train_batch_size': 2, 'dpo.max_length': 1024, 'dpo.logging_steps': 1}
    pairs = synthetic_pairs(4)
    rows, _ = fit_rows(dpo_rows(pairs), tok, 1024)
    out = dpo_folder(tmp_path, over, pairs)
    first = train_dpo(build(), tok, rows, load_settings('tiny', overrides=over), out)
    assert (out/'adapter'/'adapter_config.json').exists() and (out/'checkpoint-2').is_dir()
    cfg = json.loads((out/'adapter'/'adapter_config.json').read_text())
    d = load_settings('tiny', overrides=over).dpo      # the [dpo] LoRA settings reach the saved adapter
    assert (cfg['r'], cfg['lora_alpha'], cfg['lora_dropout'], cfg['task_type']) == (d.lora_r, d.lora_alpha, d.lora_dropout, 'CAUSAL_LM')
    assert {'q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'} <= {m.rsplit('.', 1)[-1] for m in cfg['target_modules']}
    assert [h['step'] for h in first.history if 'loss' in h] == [1, 2] and first.resumed_from == 0 and first.tokens > 0
    assert first.history[0]['loss'] == pytest.approx(0.6931, abs=1e-3) and 'rewards/margins' in first.history[0]
    same = train_dpo(build(), tok, rows, load_settings('tiny', overrides={**over, 'dpo.logging_steps': 2}), out)
    assert (same.resumed_from, same.tokens, [h['step'] for h in same.history if 'loss' in h]) == (2, 0, [1, 2])
    # three steps is another schedule (the learning rate decays to step 3): a new run beside the old, not a continuation
    longer = {**over, 'dpo.max_steps': 3}
    more = train_dpo(build(), tok, rows, load_settings('tiny', overrides=longer), dpo_folder(tmp_path, longer, pairs))
    assert more.resumed_from == 0 and [h['step'] for h in more.history if 'loss' in h] == [1, 2, 3]
    logged = json.loads((dpo_folder(tmp_path, longer, pairs)/'log_history.json').read_text())
    assert [h['step'] for h in logged if 'loss' in h] == [1, 2, 3] and (out/'adapter'/'adapter_config.json').exists()
    with pytest.raises(ValueError, match='no pairs'): train_dpo(build(), tok, [], load_settings('tiny'), tmp_path/'empty')
    with pytest.raises(ValueError, match='records its spec'): train_dpo(build(), tok, rows, load_settings('tiny', overrides=over), tmp_path/'plain')


def test_dpo_adapter_starts_from_the_seed(tiny_parts, tmp_path):
    "Two DPO trainers of the same settings start from the same LoRA weights, whatever ran before: a run repeats, and the processes of a launch agree."
    import torch
    tok, build = tiny_parts
    rows, _ = fit_rows(dpo_rows(synthetic_pairs(2)), tok, 1024)
    def lora_a(out):
        model = build()
        torch.seed()                     # the generator in any state: loading a model with from_pretrained does not seed it
        trainer = dpo_trainer(model, tok, rows, load_settings('tiny'), out)
        return {k: v.detach().clone() for k, v in trainer.model.named_parameters() if 'lora_A' in k}
    first, second = lora_a(tmp_path/'a'), lora_a(tmp_path/'b')
    assert first and all(torch.equal(first[k], second[k]) for k in first)


def test_inputs_and_settings_fail_clearly(tmp_path):
    from gaokerena.rows import DataError
    from gaokerena.world import build_world
    tiny = rlaif_questions(run_context('tiny', tmp_path))     # rlaif_limit 0: the world's whole MedMCQA-like set
    assert len(tiny) == len(build_world()['medmcqa']) and all(q['explanation'] and q['gold'] in 'ABCD' for q in tiny)
    gpu = run_context('colab-a100', tmp_path, overrides={'sources.repos_cache': str(tmp_path/'repos'), 'sources.repo_v': 'file:///nowhere'})
    with pytest.raises(DataError, match="(?s)only in the authors' repositories, and cloning them .* failed: could not clone .*data_dir"):
        rlaif_questions(gpu)
    with pytest.raises(DataError, match='data_dir'): published_pairs(gpu)
    with pytest.raises(SettingsError, match="rlaif_student: 'gaokerena-v' is not one of base, phase1"):
        run_context('tiny', tmp_path, overrides={'profile.rlaif_student': 'gaokerena-v'})
    with pytest.raises(SettingsError, match="teacher: 'human' is not one of api, local"):
        run_context('tiny', tmp_path, overrides={'profile.teacher': 'human'})
    teacher = make_teacher(run_context('colab-a100', tmp_path), tmp_path/'cache')
    assert (teacher.name, teacher.max_retries) == ('deepseek-reasoner', 5)


@pytest.mark.parametrize('local', [False, True])
def test_concurrent_teacher_calls_build_the_pairs_serial_calls_build(serve, tmp_path, tiny_parts, local):
    "Methods A and B, a teacher answering after a random delay, a student on a server or local: 8 workers build what 1 builds."
    import random
    from gaokerena.llm import LocalChat
    qs = [mcq(i, 'ABCD'[i % 4]) for i in range(12)]
    jitter = random.Random(0)
    def student(body):
        first = len(body['messages']) == 1
        return ('ok', says('A', f'دانشجو {qnum(body)}') if first else says('ABCD'[body['seed'] % 4], f'تلاش {body["seed"]}'))
    def teacher(body):
        time.sleep(jitter.uniform(0, 0.05))
        q = qs[qnum(body)]
        rewrite = 'پاسخ درست\n' in body['messages'][0]['content']
        return ('ok', says(q['gold'], f'بازنویسی {q["id"]}') if rewrite else f'۱. نقد پرسش {q["id"]}')
    stu, tea = serve(student), serve(teacher)
    tok, build = tiny_parts
    runs = {}
    for workers in (1, 8):
        s = settings(**{'rlaif.method_b_share': 0.5, 'rlaif.teacher_workers': workers, 'rlaif.round_size': 8,
                        'rlaif.student_batch_size': 4})
        pupil = LocalChat(build().eval(), tok, name='tiny') if local else chat(stu, 'student-model', None)
        report, outcomes = run(qs, pupil, chat(tea, 'teacher-model', None), tmp_path/str(workers), s)
        keep = ('id', 'method', 'outcome', 'rejected', 'student_choice', 'teacher_text', 'teacher_choice', 'chosen',
                'retry_choices', 'last_retry', 'usd')
        runs[workers] = (report['pair'], [{k: o.get(k) for k in keep} for o in outcomes])
    assert runs[1] == runs[8]
    pairs, outcomes = runs[8]
    assert [o['id'] for o in outcomes] == [q['id'] for q in qs]                      # recorded in question order
    assert {o['method'] for o in outcomes} == {'A', 'B'} and pairs >= 3
    assert local or any(o['method'] == 'B' and o['outcome'] == 'pair' for o in outcomes)
    assert not local or sum(o['outcome'] == 'retries_exhausted' for o in outcomes) >= 3   # method B's retries ran locally


# --- the DPO adapter of these settings, on the student it was trained on -------------------------------------------------

def test_dpo_spec_names_beta_learning_rate_and_the_student(tmp_path):
    from gaokerena.rounds import dpo_spec
    from gaokerena.stores import changed_keys
    pairs = synthetic_pairs(3)
    spec = lambda **o: dpo_spec(run_context('tiny', tmp_path, overrides=o), pairs)
    base = spec()
    assert changed_keys(base, spec(**{'dpo.beta': 5, 'dpo.learning_rate': 0.5})) == ['hyperparameters.beta', 'hyperparameters.learning_rate']
    assert spec(**{'eval.batch_size': 3, 'dpo.logging_steps': 2, 'rlaif.teacher_workers': 1}) == base
    assert dpo_spec(run_context('tiny', tmp_path), pairs[:2]) != base                     # other pairs


def test_later_chapters_load_the_dpo_adapter_of_their_settings(tiny_run):
    "Chapter 5's student is the DPO adapter trained with these settings, on the student it was trained on — never another's."
    from gaokerena.rounds import student_recipe
    run_dir, _ = tiny_run
    name = lambda **o: student_recipe(run_context('tiny', run_dir, overrides=o)).name
    assert name() == name(**{'eval.batch_size': 3, 'eval.cot_samples': 10}) == 'tiny+phase1+dpo'   # the tiny student is Phase 1's
    assert name(**{'dpo.beta': 5, 'dpo.learning_rate': 0.5}) == 'tiny+phase1'           # not trained: chapter 2's model
    assert name(**{'profile.rlaif_student': 'base'}) == 'tiny+phase1'                   # the adapter was trained on Phase 1's model


def test_a_phase1_student_is_not_merged_into_4bit_weights(tiny_run, tmp_path):
    "A 4-bit run whose Phase-1 adapters exist (stage 2 trained stacked) is refused before DPO would merge them into NF4 weights."
    from gaokerena.models import QuantizedMergeError
    from gaokerena.rounds import load_rlaif_base, student_base_recipe
    from gaokerena.stages import phase1_adapters, phase1_specs
    from gaokerena.stores import keyed_path
    run_dir, _ = tiny_run
    trained = phase1_adapters(run_context('tiny', run_dir))
    shutil.copytree(run_dir/'data', tmp_path/'data')
    ctx = run_context('tiny', tmp_path, overrides={'profile.rlaif_student': 'phase1', 'profile.load_in_4bit': True})
    assert phase1_adapters(ctx) is None and not student_base_recipe(ctx).merged    # the bf16 run's adapters are not the 4-bit run's
    for name, spec, adapter in zip(('pretrain', 'instruct'), phase1_specs(ctx), trained):
        shutil.copytree(adapter, keyed_path(tmp_path/'01_sft'/name, spec)/'adapter')
    assert student_base_recipe(ctx).merged == phase1_adapters(ctx)
    with pytest.raises(QuantizedMergeError, match='load_in_4bit = true: DPO trains one adapter'): load_rlaif_base(ctx)


# --- teacher and judge: inference loaders ---------------------------------------------------------------------------------

def test_a_local_teacher_without_a_pad_token_loads_for_inference(tiny_parts, tmp_path):
    "A teacher such as Llama-3 ships no pad token: it only generates, so it borrows UNK (or EOS) instead of being refused."
    from gaokerena.llm import LocalChat
    tok, build = tiny_parts
    folder = tmp_path/'llama-like'
    build().save_pretrained(folder)
    tok.save_pretrained(folder)
    cfg = json.loads((folder/'tokenizer_config.json').read_text())
    cfg.pop('pad_token', None)
    (folder/'tokenizer_config.json').write_text(json.dumps(cfg))
    ctx = run_context('tiny', tmp_path/'run', overrides={'profile.teacher': 'local', 'profile.teacher_model_id': str(folder)})
    teacher = make_teacher(ctx, tmp_path/'cache')
    assert isinstance(teacher, LocalChat) and teacher.tokenizer.pad_token == '<UNK>' and teacher.tokenizer.padding_side == 'left'
    assert not teacher.model.training and teacher.top_k == ctx.settings.eval.top_k
    said = teacher.chat([{'role': 'user', 'content': 'پرسش'}], max_tokens=4, seed=1)
    assert said.completion_tokens >= 1


# --- the DPO loss by hand, and the log-probabilities over training ------------------------------------------------

def test_dpo_loss_by_hand_equals_trls_at_step_0_and_after_a_nudge(tmp_path):
    "Our summed log-probabilities and loss equal what trl's DPOTrainer computes: log 2 at step 0, and again off log 2."
    import math, torch
    from datasets import Dataset
    from gaokerena.models import build_tiny_model, build_tokenizer, sample_texts
    from gaokerena.rlaif import completion_logps, dpo_loss
    tok = build_tokenizer(sample_texts())
    pairs = dpo_rows([{'prompt': 'کدام ویتامین محلول در چربی است؟', 'chosen': 'ویتامین د. پاسخ صحیح: [C]', 'rejected': 'ویتامین ث. پاسخ صحیح: [A]'},
                      {'prompt': 'درمان کم‌خونی فقر آهن چیست؟', 'chosen': 'مکمل آهن. پاسخ صحیح: [B]', 'rejected': 'ویتامین ث. [D]'}])
    # "Which vitamin is fat-soluble?" D / C; "What treats iron-deficiency anaemia?" iron supplements / vitamin C
    torch.manual_seed(0)
    trainer = dpo_trainer(build_tiny_model(tok), tok, pairs, settings(**{'dpo.beta': 1.0}), tmp_path)
    ids = [tokenize_pair(r, tok) for r in pairs]
    losses = []
    for nudge in (False, True):
        if nudge:
            for name, p in trainer.model.named_parameters():
                if 'lora_' in name: torch.nn.init.normal_(p, std=2.0)
        theirs = trainer.evaluate(Dataset.from_list(pairs))
        trainer.model.eval()
        policy = [completion_logps(trainer.model, p) for p in ids]
        with trainer.model.disable_adapter(): ref = [completion_logps(trainer.model, p) for p in ids]
        ours = sum(dpo_loss(*pc, *rc, 1.0) for pc, rc in zip(policy, ref)) / len(ids)
        assert abs(theirs['eval_loss'] - ours) < 1e-4
        assert abs(theirs['eval_logps/chosen'] - sum(c for c, _ in policy) / 2) < 1e-3
        assert abs(theirs['eval_logps/rejected'] - sum(r for _, r in policy) / 2) < 1e-3
        losses.append(ours)
    assert abs(losses[0] - math.log(2)) < 1e-9 and abs(losses[1] - math.log(2)) > 0.01


def test_dpo_loss_formula():
    "-log sigmoid(beta x margin): log 2 at a zero margin, symmetric, stable at extreme margins."
    import math
    from gaokerena.rlaif import dpo_loss
    assert dpo_loss(-5.0, -9.0, -5.0, -9.0) == math.log(2)
    assert abs(dpo_loss(2.0, 0.0, 0.0, 0.0, 1.0) - math.log1p(math.exp(-2.0))) < 1e-12
    assert abs(dpo_loss(0.0, 2.0, 0.0, 0.0, 1.0) - (2.0 + math.log1p(math.exp(-2.0)))) < 1e-12
    assert dpo_loss(1e4, 0.0, 0.0, 0.0, 1.0) == 0.0 and dpo_loss(-1e4, 0.0, 0.0, 0.0, 1.0) == 1e4


def test_dpo_logps_figure_draws_the_logged_log_probabilities():
    from gaokerena.rlaif import plot_dpo_logps
    history = [{'step': 1, 'loss': 0.69, 'logps/chosen': -50.0, 'logps/rejected': -48.0},
               {'step': 2, 'loss': 0.6, 'logps/chosen': -49.0, 'logps/rejected': -52.0},
               {'train_runtime': 3.0, 'step': 2}]
    fig = plot_dpo_logps(history)
    lines = fig.axes[0].lines
    assert [l.get_label() for l in lines] == ['chosen', 'rejected']
    assert [list(l.get_ydata()) for l in lines] == [[-50.0, -49.0], [-48.0, -52.0]] and list(lines[0].get_xdata()) == [1, 2]


def test_the_tiny_run_logged_dpo_log_probabilities(tiny_run):
    "Chapter 4 drew the log-probabilities trl logged while training (from the log history it saved)."
    run_dir, _ = tiny_run
    history = json.loads(next((run_dir/'03_rlaif').rglob('log_history.json')).read_text())
    logged = [h for h in history if 'loss' in h]
    assert logged and all(h['logps/chosen'] < 0 and h['logps/rejected'] < 0 for h in logged)
    assert (run_dir/'03_rlaif'/'dpo_logps.png').exists()
