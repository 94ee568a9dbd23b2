"Benchmark translation with two referees, through OpenAIChat against a real server on 127.0.0.1 (tests/llm_server.py)."
import json
import pytest
from gaokerena.rows import read_jsonl
from gaokerena.translate import referee_filter, translate_mcqs
from gaokerena.llm import LLMError, OpenAIChat

FA = {'q1': ('داروی انتخابی تشنج ابسنس؟', ['فنی‌توئین', 'اتوسوکسیماید', 'کاربامازپین', 'فنوباربیتال']),
      'q2': ('شایع‌ترین علت کم‌خونی؟', ['فقر آهن', 'تالاسمی', 'کمبود ب۱۲', 'همولیز']),
      'q3': ('عصب عضله دلتوئید؟', ['آگزیلاری', 'رادیال', 'مدیان', 'اولنار']),
      'q4': ('این ترجمه نمی‌شود', None)}
EN = [{'id': qid, 'subject': 'x', 'question': f'English question {qid}?', 'gold': 'B', 'source': 'medmcqa', 'explanation': 'because',
       'options': {'A': 'a', 'B': 'b', 'C': 'c', 'D': 'd'}} for qid in FA]


def qid_of(body) -> str:
    "The question id the request is about (it is in the English question's text)."
    text = body['messages'][-1]['content']
    return text.split('English question ')[1][:2]


def answer(body):
    "Translator: JSON (fenced) or a refusal for q4; referee 'gpt': 5 always; referee 'grok': 4 for q2, Persian ۵ otherwise."
    qid, model = qid_of(body), body['model']
    if model == 'translator':
        q, opts = FA[qid]
        if opts is None: return ('ok', 'Sorry, I cannot help with that.')
        return ('ok', '```json\n' + json.dumps({'question': q, 'options': dict(zip('ABCD', opts)), 'explanation': 'چون'}, ensure_ascii=False) + '\n```')
    if model == 'gpt': return ('ok', '5')
    return ('ok', 'امتیاز: ۴' if qid == 'q2' else 'امتیاز: ۵')


def clients(srv, cache):
    return OpenAIChat(srv.url, 'translator', cache_dir=cache), {m: OpenAIChat(srv.url, m, cache_dir=cache, max_retries=0) for m in ('gpt', 'grok')}


def test_translate_rate_filter(serve, tmp_path):
    srv = serve(answer)
    translator, referees = clients(srv, tmp_path/'cache')
    out = translate_mcqs(EN, translator, referees, tmp_path/'fa.jsonl', progress=False, temperature=0, max_tokens=512)
    assert out['counts'] == {'kept': 2, 'rejected': 1, 'translation_failed': 1} and out['new'] == 4
    assert [r['id'] for r in out['kept']] == ['q1', 'q3']
    kept = out['kept'][0]
    assert kept['question'] == FA['q1'][0] and kept['options']['B'] == 'اتوسوکسیماید' and kept['gold'] == 'B'
    assert kept['ratings'] == {'gpt': 5, 'grok': 5} and kept['explanation'] == 'چون'
    rec = {r['id']: r for r in out['records']}
    assert rec['q2']['ratings'] == {'gpt': 5, 'grok': 4} and rec['q4']['row'] is None and 'cannot' in rec['q4']['raw']
    models = [r['body']['model'] for r in srv.requests]
    assert models.count('translator') == 4 and models.count('gpt') == 3 and models.count('grok') == 3  # no referee for q4
    assert srv.requests[0]['body']['temperature'] == 0 and 'Persian' in srv.requests[0]['body']['messages'][0]['content']
    assert out['cost_usd'] == 0.0  # no prices configured for this local server
    assert [r['id'] for r in referee_filter([r['row'] for r in out['records'] if r['row']])] == ['q1', 'q3']


def test_interrupted_translation_resumes_without_asking_again(serve, tmp_path):
    broken = serve(lambda body: (500,) if qid_of(body) == 'q3' else answer(body))
    translator, referees = clients(broken, tmp_path/'cache-1')
    translator.max_retries = 0
    with pytest.raises(LLMError, match='translator'):
        translate_mcqs(EN, translator, referees, tmp_path/'fa.jsonl', progress=False)
    assert [r['id'] for r in read_jsonl(tmp_path/'fa.jsonl')] == ['q1', 'q2']
    srv = serve(answer)
    translator, referees = clients(srv, tmp_path/'cache-2')  # a fresh cache: only the file says what is done
    out = translate_mcqs(EN, translator, referees, tmp_path/'fa.jsonl', progress=False)
    assert out['new'] == 2 and {qid_of(r['body']) for r in srv.requests} == {'q3', 'q4'}
    assert [r['id'] for r in out['records']] == ['q1', 'q2', 'q3', 'q4'] and out['counts']['kept'] == 2


def test_cache_replays_a_finished_run_offline(serve, tmp_path):
    srv = serve(answer)
    translator, referees = clients(srv, tmp_path/'cache')
    first = translate_mcqs(EN[:2], translator, referees, tmp_path/'a.jsonl', progress=False)
    n = len(srv.requests)
    again = translate_mcqs(EN[:2], translator, referees, tmp_path/'b.jsonl', progress=False)  # new output file, same cache
    assert len(srv.requests) == n and again['records'] == first['records']


def test_referee_filter_needs_every_rating():
    rows = [{'ratings': {'a': 5, 'b': 5}}, {'ratings': {'a': 5, 'b': None}}, {'ratings': {'a': 4, 'b': 5}}, {'ratings': {}}, {}]
    assert referee_filter(rows) == rows[:1] and referee_filter(rows, min_rating=4) == [rows[0], rows[2]]


def test_failed_translation_says_why(serve, tmp_path):
    srv = serve(answer)
    translator, referees = clients(srv, tmp_path/'cache')
    out = translate_mcqs(EN, translator, referees, tmp_path/'fa.jsonl', progress=False)
    rec = {r['id']: r for r in out['records']}
    assert rec['q4']['status'] == 'translation_failed' and "q4: no JSON object in the translator's answer" == rec['q4']['reason']
    assert all('reason' not in rec[q] for q in ('q1', 'q2', 'q3'))


def test_a_line_cut_off_by_a_crash_is_dropped_on_resume(serve, tmp_path):
    srv = serve(answer)
    translator, referees = clients(srv, tmp_path/'cache')
    path = tmp_path/'fa.jsonl'
    translate_mcqs(EN[:2], translator, referees, path, progress=False)
    path.write_text(path.read_text(encoding='utf-8') + '{"id": "q3", "status": "ke', encoding='utf-8')
    out = translate_mcqs(EN, translator, referees, path, progress=False)
    assert out['new'] == 2 and [r['id'] for r in read_jsonl(path)] == ['q1', 'q2', 'q3', 'q4']


def endpoints(srv, **over) -> dict:
    "Overrides pointing the settings' translator and both referees at the scripted server (no key needed on 127.0.0.1)."
    out = {}
    for sec, model in (('translator', 'translator'), ('referee_1', 'gpt'), ('referee_2', 'grok')):
        out.update({f'{sec}.model': model, f'{sec}.base_url': srv.url, f'{sec}.api_key_env': 'GAOKERENA_TEST_UNSET_KEY',
                    f'{sec}.usd_per_million_input': 0, f'{sec}.usd_per_million_output': 0})
    return {**out, 'llm.max_retries': 0, **over}


def test_translate_from_settings_caps_dollars_and_writes_ledger_rows(serve, tmp_path, monkeypatch):
    from gaokerena.config import run_context
    from gaokerena.translate import translate_from_settings
    from gaokerena.ledger import read_ledger
    monkeypatch.delenv('GAOKERENA_TEST_UNSET_KEY', raising=False)
    srv = serve(answer)
    # the translator costs $11 a call (11 prompt tokens at $1 each); the referees are free; the cap is $15
    ctx = run_context('tiny', tmp_path, overrides=endpoints(srv, **{'translator.usd_per_million_input': 1e6, 'translate.max_usd': 15}))
    first = translate_from_settings(ctx, EN, progress=False)
    assert first['new'] == 2 and first['stopped_by_cap'] and first['cost_usd'] == 22.0
    assert [r['id'] for r in first['records']] == ['q1', 'q2'] and first['counts'] == {'kept': 1, 'rejected': 1}
    body = srv.requests[0]['body']
    assert body['model'] == 'translator' and body['temperature'] == 0.0 and body['max_tokens'] == 2048
    assert {r['body']['model'] for r in srv.requests} == {'translator', 'gpt', 'grok'}
    ctx = run_context('tiny', tmp_path, overrides=endpoints(srv))  # no cap, free: the rest of the questions
    rest = translate_from_settings(ctx, EN, progress=False)
    assert rest['new'] == 2 and not rest['stopped_by_cap'] and rest['counts'] == {'kept': 2, 'rejected': 1, 'translation_failed': 1}
    assert (tmp_path/'data'/'translate'/'medmcqa.jsonl').exists()
    led = read_ledger(tmp_path)
    assert list(led['stage']) == ['00_data.translate'] * 2 and list(led['api_usd']) == [22.0, 0.0] and list(led['cost_usd']) == [22.0, 0.0]
    assert led['extra'][0] == {'translator': 'translator', 'referees': ['gpt', 'grok'], 'kept': 1, 'rejected': 1, 'new': 2,
                               'stopped_by_cap': True}
