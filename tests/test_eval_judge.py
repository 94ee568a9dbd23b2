"The pairwise LLM judge of chapter 02 against a real OpenAI-compatible server on 127.0.0.1 whose verdicts the test controls."
import pytest
from llm_server import stop
from gaokerena.config import run_context
from gaokerena.evalrun import judge_pairs, make_judge, pairwise_outcomes, reference_answers, render_judge_prompt, win_rates
from gaokerena.results import new_spend
from gaokerena.results import ResultStore
from gaokerena.llm import LLMError, LocalChat, OpenAIChat

KEY_ENV = 'GAOKERENA_TEST_JUDGE_KEY'
GOOD = 'پاسخ کامل و درست'
QUESTIONS = [{'id': f'q{i}', 'question': f'پرسش شماره {i} درباره فشار خون چیست؟', 'answer': f'پاسخ پزشک {i}'}
             for i in range(6)]
OURS = {'q0': GOOD, 'q1': GOOD, 'q2': 'نمی‌دانم', 'q3': 'نمی‌دانم', 'q4': 'جواب کوتاه', 'q5': GOOD}
THEIRS = {'q0': 'غلط', 'q1': 'غلط', 'q2': GOOD, 'q3': 'مطمئن نیستم', 'q4': 'جواب کوتاه دیگر', 'q5': GOOD + ' است'}


def answer_order(body: dict) -> tuple[str, str]:
    "The two answers the judge was shown, in order, read back from the prompt in the request."
    text = body['messages'][-1]['content']
    first = text.split('## پاسخ دستیار A\n')[1].split('\n\n## پاسخ دستیار B\n')[0]
    second = text.split('## پاسخ دستیار B\n')[1].rstrip('\n')
    return first, second


def fair_judge(body: dict):
    "Prefers the answer holding GOOD; a tie when both or neither do; junk for question 4."
    if 'پرسش شماره 4' in body['messages'][-1]['content']: return ('ok', 'هر دو پاسخ را خواندم و نظری ندارم.')
    first, second = answer_order(body)
    verdict = 'C' if (GOOD in first) == (GOOD in second) else 'A' if GOOD in first else 'B'
    return ('ok', f'مقایسه کوتاه.\n[[{verdict}]]')


def flaky_judge():
    "The fair judge, except that its 7th request fails with a 500."
    calls = []
    def judge(body):
        calls.append(1)
        return (500,) if len(calls) == 7 else fair_judge(body)
    return judge


def judge_ctx(srv, tmp_path, **over):
    return run_context('h100', tmp_path, overrides={'llm.judge_base_url': srv.url, 'llm.judge_api_key_env': KEY_ENV,
                                                    'llm.judge_model': 'judge-4o', 'llm.max_retries': 0, **over})


def run_judge(ctx, store_path, workers=4):
    judge = make_judge(ctx)
    rows = judge_pairs(judge, QUESTIONS, {'ours': OURS, 'theirs': THEIRS}, ResultStore(store_path), 'mf3qa',
                       max_tokens=64, workers=workers, batch_size=4)
    return judge, rows


def test_fair_judge_in_both_orders(serve, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, 'sk-judge-test')
    srv = serve(fair_judge)
    judge, rows = run_judge(judge_ctx(srv, tmp_path), tmp_path/'r.jsonl')
    assert isinstance(judge, OpenAIChat) and judge.name == 'judge-4o'
    assert len(srv.requests) == 12 and all(r['auth'] == 'Bearer sk-judge-test' for r in srv.requests)
    assert {r['body']['model'] for r in srv.requests} == {'judge-4o'}
    assert all(r['body']['max_tokens'] == 64 and r['body']['temperature'] == 0 for r in srv.requests)
    shown = {answer_order(r['body']) for r in srv.requests if 'پرسش شماره 0' in r['body']['messages'][-1]['content']}
    assert shown == {(GOOD, 'غلط'), ('غلط', GOOD)}
    sent = {r['body']['messages'][-1]['content'] for r in srv.requests}
    assert render_judge_prompt(QUESTIONS[2]['question'], 'نمی‌دانم', GOOD) in sent
    assert [(r['qid'], r['sample'], r['first']) for r in rows[:2]] == [('q0', 0, 'ours'), ('q0', 1, 'theirs')]
    assert pairwise_outcomes(rows, 'ours') == {'q0': 'win', 'q1': 'win', 'q2': 'loss', 'q3': 'tie', 'q4': 'invalid', 'q5': 'tie'}
    assert pairwise_outcomes(rows, 'theirs')['q2'] == 'win'
    w = win_rates(rows, 'ours', n_boot=500)
    assert {o: w[o]['count'] for o in ('win', 'tie', 'loss', 'invalid')} == {'win': 2, 'tie': 2, 'loss': 1, 'invalid': 1}
    assert w['win']['rate'] == pytest.approx(100 * 2 / 6) and w['win']['ci_low'] <= w['win']['rate'] <= w['win']['ci_high']
    assert w['judge'] == {'questions': 6, 'verdicts': 12, 'invalid_verdicts': 2, 'consistency': 100.0, 'first_position': 50.0}


def test_position_biased_judge_is_cancelled(serve, tmp_path, monkeypatch):
    "A judge that always picks the first answer gives every question a tie, and says so in its consistency."
    monkeypatch.setenv(KEY_ENV, 'k')
    srv = serve(('ok', '[[A]]'))
    _, rows = run_judge(judge_ctx(srv, tmp_path), tmp_path/'r.jsonl')
    w = win_rates(rows, 'ours', n_boot=200)
    assert w['tie']['count'] == 6 and w['win']['count'] == w['loss']['count'] == 0
    assert w['judge']['consistency'] == 0 and w['judge']['first_position'] == 100


def test_judging_resumes_and_replays_from_the_cache(serve, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, 'k')
    srv = serve(flaky_judge())
    ctx, path = judge_ctx(srv, tmp_path), tmp_path/'r.jsonl'
    with pytest.raises(LLMError, match='judge-4o'): run_judge(ctx, path, workers=1)
    assert len(ResultStore(path).rows) == 4
    _, rows = run_judge(ctx, path, workers=1)
    assert len(srv.requests) == 7 + 8 - 2  # the two answers of the failed batch that succeeded come from the cache
    assert len(rows) == 12 and len({(r['qid'], r['sample']) for r in ResultStore(path).rows}) == 12
    assert pairwise_outcomes(rows, 'ours')['q2'] == 'loss'
    stop(srv)
    path.unlink()
    _, replay = run_judge(ctx, path)
    assert [r['verdict'] for r in replay] == [r['verdict'] for r in rows] and len(srv.requests) == 13


def test_missing_answer_is_a_clear_error(serve, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, 'k')
    srv = serve(('ok', '[[A]]'))
    with pytest.raises(KeyError, match="no answer of 'theirs' to 1 questions of mf3qa, e.g. q5"):
        judge_pairs(make_judge(judge_ctx(srv, tmp_path)), QUESTIONS,
                    {'ours': OURS, 'theirs': {k: v for k, v in THEIRS.items() if k != 'q5'}}, ResultStore(tmp_path/'r.jsonl'), 'mf3qa')
    assert srv.requests == []


def test_reference_answers_and_local_judge(tmp_path):
    assert reference_answers(QUESTIONS)['q3'] == 'پاسخ پزشک 3'
    from gaokerena.models import build_tiny_model, build_tokenizer, sample_texts
    ctx = run_context('tiny', tmp_path, overrides={'eval.top_k': 9})
    tok = build_tokenizer(sample_texts()[:100], 500)
    judge = make_judge(ctx, build_tiny_model(tok, 16), tok, 'tiny')
    assert isinstance(judge, LocalChat) and judge.name == 'local-tiny' and judge.cache_dir == tmp_path/'02_eval'/'judge_cache'
    assert judge.top_k == 9 and judge.cache_name.startswith('local-tiny@')


def test_judge_dollars_for_the_ledger(serve, tmp_path, monkeypatch):
    "Each verdict row carries its cost at the settings' judge prices; a resumed run pays only for what it judged itself."
    monkeypatch.setenv(KEY_ENV, 'k')
    srv = serve(flaky_judge())
    ctx = judge_ctx(srv, tmp_path, **{'llm.judge_usd_per_million_input': 1000.0, 'llm.judge_usd_per_million_output': 2000.0})
    path, per_call = tmp_path/'r.jsonl', (11 * 1000 + 3 * 2000) / 1e6   # the server reports 11 tokens in, 3 out
    with pytest.raises(LLMError): run_judge(ctx, path, workers=1)
    assert [r['usd'] for r in ResultStore(path).rows] == [pytest.approx(per_call)] * 4
    assert new_spend(ResultStore(path).rows, set()) == pytest.approx(4 * per_call)   # what the failed run records
    paid = set(ResultStore(path).keys)
    _, rows = run_judge(ctx, path, workers=1)
    assert len(rows) == 12 and new_spend(rows, paid) == pytest.approx(5 * per_call)  # 8 new rows, 3 cached by the failed run
    assert new_spend(rows, set(ResultStore(path).keys)) == 0
    default = make_judge(judge_ctx(srv, tmp_path))
    assert (default.usd_per_million_input, default.usd_per_million_output) == (2.5, 10.0)
