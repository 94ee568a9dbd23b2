"Chapter 5: pass@k, self-consistency, negative marking, the verifier and uncertainty."
import math
from fractions import Fraction
from itertools import combinations
import numpy as np
import pytest
import torch
from gaokerena.evaluate import render_verifier_prompt
from gaokerena.results import ResultStore
from gaokerena.sampling import (adapter_layers, base_model, mean_pass_at_k, paper_rows, parse_passage_choice,
                                passage_mentions, pool_benchmarks, published_passk, run_verifier, sample_table, score_samples, uncertain,
                                uncertainty, uncertainty_frame, verified_answers, verifier_answer)
from gaokerena.passk import (answer_entropy, negative_marking, pass_at_k, plot_passk, published_markers,
                             self_consistency, verifier_prompt)


def humaneval_estimator(n: int, c: int, k: int) -> float:
    "The reference implementation of Chen et al. 2021 (human-eval/execution.py, estimate_pass_at_k), verbatim."
    if n - c < k:
        return 1.0
    return 1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1))


def brute_force(n: int, c: int, k: int) -> Fraction:
    "Share of k-subsets of n samples (the first c correct) holding a correct one, by enumeration."
    subsets = list(combinations(range(n), k))
    return Fraction(sum(any(i < c for i in s) for s in subsets), len(subsets))


@pytest.mark.parametrize('n', range(1, 9))
def test_pass_at_k_equals_brute_force_enumeration(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(float(brute_force(n, c, k)), abs=1e-12), (n, c, k)


@pytest.mark.parametrize('n, c, k, expected', [
    (10, 3, 1, 0.3), (10, 3, 5, 11 / 12), (5, 2, 2, 0.7), (5, 2, 3, 0.9), (5, 1, 3, 0.6), (5, 0, 3, 0.0),
    (200, 1, 1, 0.005), (200, 100, 1, 0.5), (200, 13, 100, 1 - math.comb(187, 100) / math.comb(200, 100))])
def test_pass_at_k_reference_values(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)
    assert humaneval_estimator(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_matches_humaneval_implementation_on_a_grid():
    for n in (5, 20, 100, 200):
        for c in range(0, n + 1, max(1, n // 10)):
            for k in (1, 2, 3, 5, 10, 50, 100):
                if k <= n: assert pass_at_k(n, c, k) == pytest.approx(float(humaneval_estimator(n, c, k)), abs=1e-12)


def test_pass_at_k_is_stable_where_binomials_overflow_floats():
    n, c, k = 5000, 37, 400
    with pytest.raises(OverflowError): float(math.comb(n, k))
    exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
    assert pass_at_k(n, c, k) == pytest.approx(float(exact), abs=1e-12)


@pytest.mark.parametrize('n, c, k', [(5, 6, 1), (5, -1, 1), (5, 2, 0), (5, 2, 6)])
def test_pass_at_k_rejects_impossible_counts(n, c, k):
    with pytest.raises(ValueError, match='0 <= c <= n'): pass_at_k(n, c, k)


def test_mean_pass_at_k_of_a_sample_table():
    rows = [{'qid': q, 'sample': i, 'answer': a, 'gold': 'A', 'generation': f'{q}{i}'}
            for q, ans in (('q1', 'AABCA'), ('q2', 'BBBBB')) for i, a in enumerate(ans)]
    table = sample_table(rows[::-1])
    assert table['q1']['answers'] == list('AABCA') and table['q1']['generations'][4] == 'q14'
    assert mean_pass_at_k(table, 1) == pytest.approx(0.3) and mean_pass_at_k(table, 3) == pytest.approx(0.5)


def test_self_consistency_threshold_and_the_non_answer_switch():
    assert self_consistency(list('AABBA')) == 'A' and self_consistency(list('AABBC')) == 'unanswered'
    assert self_consistency(list('AABBC'), threshold=2) == 'unanswered'         # a tie is no answer
    votes = ['none', 'invalid', 'multiple', 'A', 'B']
    assert self_consistency(votes) == 'unanswered'
    assert self_consistency(votes, count_non_answers=True) == 'none'


def test_negative_marking_penalises_only_wrong_options():
    m = negative_marking(['A', 'B', 'C', 'unanswered', 'none', 'invalid'], list('AAAAAA'))
    assert (m['n'], m['correct'], m['wrong'], m['unanswered']) == (6, 1, 2, 3)
    assert m['accuracy'] == pytest.approx(100 / 6) and m['negative_marking'] == pytest.approx(100 * (1 - 2 / 3) / 6)


def test_entropy_and_distinct_answers():
    assert answer_entropy(list('AAAAA')) == 0.0
    assert answer_entropy(list('AABBC')) == pytest.approx(-(2 * 0.4 * math.log2(0.4) + 0.2 * math.log2(0.2)))
    assert answer_entropy(['none', 'invalid', 'A', 'A', 'A']) == pytest.approx(answer_entropy(list('BBAAA')))
    u = uncertainty({'a': {'answers': list('ABCDA')}, 'b': {'answers': list('AAAAA')}, 'c': {'answers': ['none'] * 5}})
    assert u['distinct_options'] == {0: 1 / 3, 1: 1 / 3, 2: 0.0, 3: 0.0, 4: 1 / 3}


@pytest.mark.parametrize('text, passage', [
    ('بنابراین، متن شماره **چهار** کمترین اطلاعات غلط را دارد.', 4),
    ('**پاسخ: متن شماره سه**', 3),
    ('متن شماره یک خطا دارد و متن دو هم. در نتیجه متن پنجم از همه دقیق‌تر است.', 5),
    ('در نهایت: متن ۲.', 2), ('پاسخ نهایی: متن ٤', 4), ('بنابراین متن 1 بهترین است', 1),
    ('سومین متن از همه دقیق‌تر است.', 3), ('بنابراین، متن اول', 1),
    ('- **متن شماره دو:** نادرست.\n- **متن شماره پنج:** گزینه B را به درستی برمی‌گزیند.', 5),
    ('متن‌های یک و دو درست‌اند.', None), ('گزینه [B] درست است.', None), ('', None), (None, None),
    ('متن **شماره سه** از همه دقیق‌تر است.', 3)])
def test_parse_passage_choice_reads_persian_numbers(text, passage):
    assert parse_passage_choice(text) == passage


@pytest.mark.parametrize('text, passage', [
    # the verdict in the question's words comes first, a bullet list of the other passages last
    ('به نظر من، کمترین اطلاعات غلط را **متن شماره دو** دارد.\n\n* **متن شماره یک:** خطای کوچکی دارد.\n* **متن شماره چهار:** نادرست.', 2),
    ('بررسی متن‌ها نشان می‌دهد که متن شماره **پنج** کمترین مقدار اطلاعات نادرست را ارائه می‌دهد.\nمتن ۱ و ۳ خطا دارند.', 5),
    ('متن شماره یک اطلاعات غلط کمتری دارد.\n- متن شماره سه: اشتباه.', 1),
    # the last verdict sentence wins over a conclusion cue that names another passage in passing
    ('کمترین اطلاعات غلط در متن شماره دو است. بنابراین، متن شماره دو بهتر از متن شماره چهار است.', 2),
    # a denied verdict is not one: here no sentence states a verdict and the conclusion decides
    ('متن شماره یک کمترین اطلاعات غلط را ندارد. در نتیجه متن شماره سه دقیق‌تر است.', 3),
    # a conclusion that names the most wrong passage answers the opposite question
    ('بنابراین، پاسخ نهایی: **متن شماره پنج نادرست‌ترین متن است.**', None),
    ('در نتیجه، متن شماره دو بیشترین اطلاعات غلط را دارد.', None)])
def test_parse_passage_choice_reads_the_verdict_in_the_questions_words(text, passage):
    assert parse_passage_choice(text) == passage


def test_verifier_answer_is_the_named_passages_option():
    assert verifier_answer('بنابراین متن شماره سه', ['A', 'B', 'C', 'D', 'none']) == 'C'
    assert verifier_answer('بنابراین متن شماره پنج', ['A', 'B', 'C', 'D', 'none']) == 'none'
    assert verifier_answer('چیزی نگفت', list('ABCDA')) == 'invalid'   # nothing read, as extract_choice says


def test_a_tie_is_no_answer_whatever_the_order_of_the_samples():
    "A, B, A, B, C at threshold 2: a tie between A and B; it must not depend on which run came first."
    for order in ('ABABC', 'BABAC', 'CABAB', 'ABCBA'):
        assert self_consistency(list(order), threshold=2) == 'unanswered', order
    assert self_consistency(list('ABABA'), threshold=2) == 'A' and self_consistency(list('AABBBCCC'), threshold=3) == 'unanswered'
    assert self_consistency(['none', 'none', 'A', 'A', 'B'], threshold=2, count_non_answers=True) == 'unanswered'


@pytest.mark.parametrize('n', [1, 3, 5, 10, 25])
def test_the_verifier_reads_any_number_of_passages(n):
    "The paper's prompt for five passages, the documented extension for any other count; the parser reads every number."
    passages = [f'استدلال {k}' for k in range(1, n + 1)]          # 'reasoning k'
    prompt = render_verifier_prompt(passages)
    assert prompt.count('## متن شماره') == n and all(f'استدلال {k} \n' in prompt for k in range(1, n + 1))
    if n == 5: assert prompt.startswith('\nپنج متن پزشکی')
    else: assert not prompt.startswith('\nپنج متن')
    q = {'question': 'کدام؟', 'options': dict(A='a', B='b', C='c', D='d')}
    assert verifier_prompt('question', passages, q).endswith(prompt)
    answers = [('ABCD' * 7)[k] for k in range(n)]
    assert verifier_answer(f'بنابراین متن شماره {n}', answers) == answers[-1]     # 'therefore text number n'
    assert verifier_answer(f'پاسخ نهایی: متن {n + 1}', answers) == 'invalid'     # 'final answer: text n+1'


def test_pass_at_k_goes_up_to_passk_max_k_with_intervals():
    table = {f'q{i}': {'gold': 'A', 'answers': list(ans)} for i, ans in enumerate(['AABCA', 'BBBBB', 'ABCDA', 'CCCCA'])}
    three = score_samples(table, {}, max_k=3, n_boot=300)
    assert list(three['pass_at_k']) == [1, 2, 3] == list(three['pass_at_k_ci'])
    assert list(score_samples(table, {}, n_boot=300)['pass_at_k']) == [1, 2, 3, 4, 5]
    for k, (lo, hi) in three['pass_at_k_ci'].items(): assert lo <= three['pass_at_k'][k] <= hi
    vote = three['scores']['self-consistency']
    assert vote['accuracy_ci'][0] <= vote['accuracy'] <= vote['accuracy_ci'][1]
    assert vote['negative_marking_ci'][0] <= vote['negative_marking'] <= vote['negative_marking_ci'][1]


def test_paper_rows_show_our_interval_and_whether_the_paper_lies_in_it():
    table = {f'q{i}': {'gold': 'A', 'answers': ['A'] * 5 if i < 65 else ['B'] * 5} for i in range(168)}
    results = {'ibmsee': score_samples(table, {}, max_k=3, n_boot=500)}
    pub = {('r_cot', 'gaokerena-r', 'ibmsee', None): 38.69, ('r_cot_neg', 'gaokerena-r', 'ibmsee', None): 40.0,
           ('r_passk', 'gaokerena-r', 'ibmsee', 2): 0.5387}
    rows = {r['metric']: r for r in paper_rows(results, pub)}
    cot = rows['CoT, self-consistency: accuracy %']
    assert cot['ours'] == pytest.approx(100 * 65 / 168) and cot['ci_low'] < 38.69 < cot['ci_high'] and cot['paper_in_ci'] is True
    assert 12 < cot['ci_high'] - cot['ci_low'] < 17                                   # IBMSEE's 168 questions: about ±7 points
    assert rows['pass@2 (fraction)']['paper_in_ci'] is False and rows['CoT, self-consistency: negative marking %']['paper_in_ci'] is False


def test_verifier_prompts():
    passages = [f'p{i}' for i in range(5)]
    paper = render_verifier_prompt(passages)
    assert paper.count('## متن شماره') == 5 and '## پرسش' not in paper and paper.endswith('p4 \n\n\n\n\n')
    q = {'question': 'کدام؟', 'options': dict(A='a', B='b', C='c', D='d')}
    assert '## پرسش\nکدام؟' in verifier_prompt('question', passages, q) and '[D] : d' in verifier_prompt('loglik', passages, q)
    assert verifier_prompt('paper', passages) == paper and verifier_prompt('question', passages, q).endswith(paper)
    with pytest.raises(ValueError, match='unknown verifier variant'): verifier_prompt('best', passages, q)


@pytest.fixture(scope='module')
def tiny():
    from gaokerena.models import build_tiny_model, build_tokenizer, sample_texts
    tok = build_tokenizer(sample_texts(), 3000)
    return build_tiny_model(tok, 64, 0), tok


def test_run_verifier_only_open_questions_and_resumes(tiny, tmp_path):
    model, tok = tiny
    table = {'q1': {'gold': 'A', 'answers': list('AAABC'), 'generations': ['x'] * 5},
             'q2': {'gold': 'B', 'answers': list('ABCDA'), 'generations': ['y'] * 5},
             'q3': {'gold': 'C', 'answers': ['none'] * 5, 'generations': ['z'] * 5}}
    questions = {q: {'question': q, 'options': dict(A='a', B='b', C='c', D='d')} for q in table}
    store = ResultStore(tmp_path/'v.jsonl')
    for variant in ('paper', 'question', 'loglik'):
        got = run_verifier(model, tok, table, questions, store, 'tiny', 'b', variant, max_new_tokens=4, batch_size=2)
        assert set(got) == {'q2', 'q3'} == set(uncertain(table))
        # no passage of q3 holds an option: a non-answer whatever the verifier says ('invalid' when it names no passage)
        assert got['q3'] == 'none' if variant == 'loglik' else got['q3'] in ('none', 'invalid')
        if variant == 'loglik': assert got['q2'] in 'ABCD'
    n = len(ResultStore(tmp_path/'v.jsonl').rows)
    assert n == 6
    again = run_verifier(model, tok, table, questions, ResultStore(tmp_path/'v.jsonl'), 'tiny', 'b', 'paper', max_new_tokens=4)
    assert len(ResultStore(tmp_path/'v.jsonl').rows) == n and set(again) == {'q2', 'q3'}
    final = verified_answers(table, again)
    assert final['q1'] == 'A' and final['q2'] == again['q2']


def test_base_model_disables_a_peft_adapter(tiny):
    from peft import LoraConfig, get_peft_model
    model, tok = tiny
    ids = tok('سلام', return_tensors='pt')['input_ids']
    with torch.no_grad(): plain = model(ids).logits
    peft = get_peft_model(build_copy(model), LoraConfig(r=2, lora_alpha=2, target_modules=['q_proj', 'v_proj'], init_lora_weights=False))
    with torch.no_grad():
        adapted = peft(ids).logits
        with base_model(peft) as base: disabled = base(ids).logits
    assert not torch.allclose(adapted, plain) and torch.allclose(disabled, plain)


def build_copy(model):
    "A fresh copy of a model (peft wraps in place)."
    import copy
    return copy.deepcopy(model)


def published_verdicts(real_data):
    "(benchmark, sheet row, verdict text, the authors' label, our reading, gold) of every published verdict, through the hand-labelled runs."
    from gaokerena.reproduce import PublishedData, cot_tables
    from gaokerena.sheets import read_verifier_sheet
    pub = PublishedData(real_data)
    tables = cot_tables(pub)
    out = []
    for _, s in pub.select(style='verifier').iterrows():
        final = read_verifier_sheet(s.path)
        for t, row, text, label, gold in zip(tables[('gaokerena-r', s.benchmark)].values(), final.row, final.verifier_text,
                                             final.label, final.gold):
            if text: out.append((s.benchmark, row, text, label, verifier_answer(text, t['labels']), gold))
    return out


def test_verifier_parser_agrees_with_the_authors_on_the_published_verdicts(real_data):
    "99 of 100 verdicts read as the authors did (96 with the same non-answer type: they write invalid where we keep the run's none)."
    from gaokerena.extract import same_outcome
    verdicts = published_verdicts(real_data)
    assert len(verdicts) == 100
    assert sum(label == ours for _, _, _, label, ours, _ in verdicts) == 96
    assert sorted((b, r, label, ours) for b, r, _, label, ours, _ in verdicts if label != ours and same_outcome(label, ours)) == [
        ('ibmsee', 21, 'invalid', 'none'), ('ibmsee', 43, 'invalid', 'none'), ('ibmsee', 77, 'invalid', 'none')]


def test_the_one_verdict_read_differently_is_an_author_slip(real_data):
    "IBMSEE sys_result.xlsx row 13 names passage four twice; the label is passage five's option and ours is the gold answer."
    from gaokerena.extract import same_outcome
    differ = [(b, r, text, label, ours, gold) for b, r, text, label, ours, gold in published_verdicts(real_data) if not same_outcome(label, ours)]
    assert [(b, r, label, ours, gold) for b, r, _, label, ours, gold in differ] == [('ibmsee', 13, 'B', 'A', 'A')]
    text = differ[0][2]
    assert parse_passage_choice(text) == 4 and {n for _, n in passage_mentions(text)} == {1, 2, 3, 4, 5}
    assert text.count('متن شماره چهار') >= 2 and 'کمترین' in text


def test_count_non_answers_reaches_the_verifier(tiny, tmp_path):
    "With the switch on, a question whose votes are mostly non-answers is settled as 'none': not verified, verdict ignored."
    model, tok = tiny
    table = {'q1': {'gold': 'A', 'answers': ['none', 'invalid', 'multiple', 'A', 'B'], 'generations': ['x'] * 5},
             'q2': {'gold': 'B', 'answers': list('ABCDA'), 'generations': ['y'] * 5}}
    questions = {q: {'question': q, 'options': dict(A='a', B='b', C='c', D='d')} for q in table}
    off = run_verifier(model, tok, table, questions, ResultStore(tmp_path/'off.jsonl'), 'tiny', 'b', 'loglik', batch_size=2)
    on = run_verifier(model, tok, table, questions, ResultStore(tmp_path/'on.jsonl'), 'tiny', 'b', 'loglik', batch_size=2,
                      count_non_answers=True)
    assert set(off) == {'q1', 'q2'} and set(on) == {'q2'} and len(ResultStore(tmp_path/'on.jsonl').rows) == 1
    assert verified_answers(table, off)['q1'] in 'AB' and verified_answers(table, off, count_non_answers=True)['q1'] == 'none'
    scored = score_samples(table, {'loglik': on}, count_non_answers=True)['scores']
    assert scored['verifier: loglik']['unanswered'] >= 1 and scored['self-consistency']['unanswered'] == 2


def test_count_non_answers_is_a_setting():
    from gaokerena.config import load_settings
    assert load_settings('tiny').eval.count_non_answers is False
    assert load_settings('tiny', {'eval.count_non_answers': 'true'}).eval.count_non_answers is True


def test_base_model_refuses_a_merged_adapter(tiny, tmp_path):
    "After an adapter was merged in place (the kit's evaluations never do it), disabling it would silently give the DPO model."
    from peft import LoraConfig, get_peft_model
    from gaokerena.models import merge_adapters
    model, tok = tiny
    peft = get_peft_model(build_copy(model), LoraConfig(r=2, lora_alpha=2, target_modules=['q_proj', 'v_proj']))
    assert adapter_layers(peft) == 2 * model.config.num_hidden_layers and adapter_layers(model) == 0
    with base_model(peft): pass
    merge_adapters(peft)
    assert adapter_layers(peft) == 0
    with pytest.raises(RuntimeError, match='merged into its weights'):
        with base_model(peft): pass


def test_scores_per_benchmark_and_pooled_mmlu():
    from gaokerena.reproduce import PUBLISHED
    tables = {'anatomy': {'1': {'gold': 'A', 'answers': list('AAABB')}, '2': {'gold': 'B', 'answers': list('ABCDA')}},
              'college_biology': {'1': {'gold': 'C', 'answers': list('CCCCC')}},
              'ibmsee': {'1': {'gold': 'D', 'answers': list('ABCAB')}}}
    verdicts = {'anatomy': {'paper': {'2': 'B'}}, 'college_biology': {'paper': {}}, 'ibmsee': {'paper': {'1': 'A'}}}
    mmlu = pool_benchmarks(tables, ('anatomy', 'college_biology', 'medical_genetics'))
    assert sorted(mmlu) == ['anatomy/1', 'anatomy/2', 'college_biology/1']     # ids repeat across subjects: prefixed
    pooled = score_samples(mmlu, {'paper': pool_benchmarks(verdicts_of(verdicts, 'paper'), ('anatomy', 'college_biology'))})
    assert pooled['scores']['self-consistency']['correct'] == 2 and pooled['scores']['verifier: paper']['correct'] == 3
    ib = score_samples(tables['ibmsee'], verdicts['ibmsee'])
    assert ib['scores']['verifier: paper']['wrong'] == 1
    assert ib['scores']['verifier: paper']['negative_marking'] == pytest.approx(-100 / 3)
    assert ib['pass_at_k'] == {k: 0.0 for k in range(1, 6)} and ib['uncertainty']['distinct_options'][3] == 1.0
    rows = paper_rows({'ibmsee': ib, 'mmlu_avg': pooled}, PUBLISHED)
    got = {(r['metric'], r['benchmark']): (r['ours'], r['paper']) for r in rows}
    assert got[('CoT, self-consistency: accuracy %', 'mmlu_avg')] == (pytest.approx(200 / 3), 48.76)
    assert got[("self-consistency + the paper's verifier: accuracy %", 'ibmsee')] == (0.0, 46.42)
    assert got[('pass@3 (fraction)', 'ibmsee')] == (0.0, 0.6208)
    assert got[('CoT, self-consistency: negative marking %', 'ibmsee')] == (0.0, 24.60)   # no vote: unanswered, no penalty
    assert len(rows) == 8       # 6 IBMSEE cells (CoT, negative marking, verifier, pass@1..3) + 2 MMLU average cells


def verdicts_of(verdicts: dict, variant: str) -> dict:
    "{benchmark: {qid: option}} of one verifier variant."
    return {b: v[variant] for b, v in verdicts.items()}


def test_plot_passk_overlays_published_points_of_models_without_curves():
    import matplotlib
    matplotlib.use('Agg')
    curves = {('ours', b): {k: 0.1 * k for k in range(1, 6)} for b in ('anatomy', 'ibmsee', 'mmlu_avg')}
    from gaokerena.reproduce import PUBLISHED
    fig = plot_passk(curves, published_passk(PUBLISHED), published_label='paper')
    assert len(fig.axes) == 3 and published_markers(fig) == 3
    ibmsee = fig.axes[1]
    marks = [l for l in ibmsee.lines if l.get_gid() == 'published']
    assert [list(l.get_ydata()) for l in marks] == [[0.3940, 0.5387, 0.6208]] and marks[0].get_label() == 'gaokerena-r (paper)'
    assert marks[0].get_markeredgecolor() != [l for l in ibmsee.lines if l.get_label() == 'ours'][0].get_color()


def test_uncertainty_frame():
    uf = uncertainty_frame({('m', 'b'): {'q': {'answers': list('ABCDA')}}, ('n', 'b'): {'q': {'answers': list('AAAAA')}}})
    assert uf.loc[('m', 'b'), '4 options'] == 1.0 and uf.loc[('n', 'b'), '1 options'] == 1.0
    assert uf.loc[('m', 'b'), 'entropy (bits)'] == pytest.approx(answer_entropy(list('ABCDA'))) and uf.loc[('n', 'b'), 'entropy (bits)'] == 0


@pytest.fixture(scope='module')
def published_runs(real_data):
    "The authors' five CoT runs per model and benchmark (hand labels), and the PublishedData that read them."
    from gaokerena.reproduce import PublishedData, cot_tables
    pub = PublishedData(real_data)
    return cot_tables(pub), pub


def test_gaokerena_v_spreads_its_answers_the_most(published_runs):
    "The paper's observation: gaokerena-V gives the most different answers (entropy, all four options) on every benchmark."
    runs, _ = published_runs
    assert len(runs) == 12 and all(len(t['answers']) == 5 for tab in runs.values() for t in tab.values())
    uf = uncertainty_frame(runs)
    for b in ('anatomy', 'clinical_knowledge', 'college_biology', 'ibmsee'):
        bench = uf.xs(b, level=1)
        assert bench['entropy (bits)'].idxmax() == bench['4 options'].idxmax() == 'gaokerena-v', b
        assert bench.loc['gaokerena-v', 'entropy (bits)'] - bench.loc['gaokerena-r', 'entropy (bits)'] > 0.2, b
        assert bench['questions'].nunique() == 1


def test_gaokerena_r_is_not_more_consistent_than_aya(published_runs):
    "What the summary of chapter 5 says: on anatomy and college biology Gaokerena-R spreads its answers more than aya."
    runs, _ = published_runs
    e = uncertainty_frame(runs)['entropy (bits)']
    assert round(e[('gaokerena-r', 'anatomy')], 2) == 0.81 and round(e[('aya-expanse-8b', 'anatomy')], 2) == 0.77
    assert round(e[('gaokerena-r', 'college_biology')], 2) == 0.84 and round(e[('aya-expanse-8b', 'college_biology')], 2) == 0.75
    for b in ('clinical_knowledge', 'ibmsee'): assert abs(e[('gaokerena-r', b)] - e[('aya-expanse-8b', b)]) < 0.01, b


def test_readme_passk_curves_overlay_every_model_and_benchmark(published_runs):
    "The authors' Readme files state pass@1..5 for 3 models x 4 benchmarks; IBMSEE gaokerena-r's first three are the paper's."
    import matplotlib
    matplotlib.use('Agg')
    from gaokerena.reproduce import PUBLISHED, readme_passk
    runs, pub = published_runs
    readme = readme_passk(pub)
    assert set(readme) == set(runs) and all(list(c) == [1, 2, 3, 4, 5] for c in readme.values())
    paper = published_passk(PUBLISHED)[('gaokerena-r', 'ibmsee')]
    assert {k: round(readme[('gaokerena-r', 'ibmsee')][k], 4) for k in paper} == paper
    ours = {key: {k: mean_pass_at_k(t, k) for k in range(1, 6)} for key, t in runs.items()}
    assert max(abs(ours[key][k] - v) for key, c in readme.items() for k, v in c.items()) < 0.02
    fig = plot_passk(ours, readme, ncols=3, published_label="authors' Readme")
    assert len([ax for ax in fig.axes if ax.lines]) == 4 and published_markers(fig) == 60


def test_the_tiny_run_scores_every_benchmark_beside_the_paper(tiny_run):
    "Chapter 5 under `gaokerena run`: per-benchmark scores, curves and uncertainty, and a labelled comparison in the report."
    import json
    from gaokerena.sources import SUBJECTS
    from gaokerena.ledger import TINY_COMPARISON
    from gaokerena.report import report_blocks
    run_dir, _ = tiny_run
    pk = json.loads((run_dir/'04_passk'/'metrics.json').read_text())
    benches = {*SUBJECTS, 'ibmsee', 'mmlu_avg'}
    assert set(pk['pass_at_k']) == set(pk['scores']) == set(pk['uncertainty']) == benches
    n = {b: pk['scores'][b]['self-consistency']['n'] for b in benches}
    from gaokerena.world import build_world
    assert n['mmlu_avg'] == sum(n[b] for b in SUBJECTS) and n['mmlu_avg'] + n['ibmsee'] == len(build_world()['mcq'])   # eval_limit 0: all
    assert all(len(pk['scores'][b]) == 4 and len(pk['pass_at_k'][b]) == len(pk['pass_at_k_ci'][b]) == 3 for b in benches)   # passk_max_k
    assert all(u['questions'] == n[b] and sum(u[f'{k} options'] for k in range(5)) == pytest.approx(1) for b, u in pk['uncertainty'].items())
    (title, comparison), = json.loads((run_dir/'04_passk'/'paper_comparison.json').read_text()).items()
    assert comparison['note'].startswith(TINY_COMPARISON) and f"{n['mmlu_avg']} Persian MMLU and {n['ibmsee']} IBMSEE questions" in comparison['note']
    assert len(comparison['rows']) == 9
    assert all(r['ci_low'] <= r['ours'] <= r['ci_high'] and isinstance(r['paper_in_ci'], bool) for r in comparison['rows'])
    assert {(r['benchmark'], r['paper']) for r in comparison['rows']} >= {('ibmsee', 0.6208), ('mmlu_avg', 52.98), ('anatomy', 29.13)}
    assert ('h3', f'Compared with the paper: {title}') in report_blocks(run_dir)


def test_plurality_vote_answers_every_question_the_3_of_5_rule_answers_the_same_way():
    "self_consistency(threshold=1) is Wang et al.'s plurality vote (ties open): it answers a superset, with the same options."
    import itertools
    for answers in itertools.product('ABCD', repeat=5):
        strict, plurality = self_consistency(list(answers)), self_consistency(list(answers), threshold=1)
        if strict != 'unanswered': assert plurality == strict
    assert self_consistency(list('AABCD'), threshold=1) == 'A' and self_consistency(list('AABCD')) == 'unanswered'
    assert self_consistency(list('AABBC'), threshold=1) == 'unanswered'
