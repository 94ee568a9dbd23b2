"The LLM client against a real HTTP server on 127.0.0.1, and LocalChat on a tiny Cohere model."
import json
import pytest
from llm_server import stop
from gaokerena.llm import ChatResult, LLMError, LocalChat, OpenAIChat, cache_key, cache_path

KEY_ENV = 'GAOKERENA_TEST_LLM_KEY'
KEY = 'sk-test-DO-NOT-LEAK-7f3a9c'
ASK = [{'role': 'user', 'content': 'فشار خون بالا چه علامتی دارد؟'}]


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    return KEY


def client(srv, cache_dir, **kw):
    return OpenAIChat(srv.url, 'teacher-model', KEY_ENV, cache_dir, **{'timeout': 0.5, 'max_retries': 3, **kw})


def test_retries_429_then_500_then_succeeds(serve, key, tmp_path):
    srv = serve((429,), (500,), ('ok', 'پاسخ'))
    res = client(srv, tmp_path).chat(ASK, max_tokens=16)
    assert (res.text, res.cached, res.prompt_tokens, res.completion_tokens) == ('پاسخ', False, 11, 3)
    assert len(srv.requests) == 3
    assert srv.requests[0]['path'] == '/v1/chat/completions'
    assert srv.requests[0]['body']['messages'] == ASK and srv.requests[0]['body']['max_tokens'] == 16
    assert all(r['auth'] == f'Bearer {KEY}' for r in srv.requests)


def test_timeout_is_retried(serve, key, tmp_path):
    srv = serve(('sleep', 1.5), ('ok', 'on time'))
    res = client(srv, tmp_path).chat(ASK)
    assert res.text == 'on time' and len(srv.requests) == 2


def test_persistent_failure_is_a_clear_error_without_the_key(serve, key, tmp_path):
    srv = serve((500,))
    llm = client(srv, tmp_path, max_retries=1)
    with pytest.raises(LLMError) as e:
        llm.chat(ASK)
    msg = str(e.value)
    assert 'teacher-model' in msg and srv.url in msg and 'InternalServerError' in msg and '500' in msg
    assert KEY not in msg and KEY not in repr(e.value)
    assert e.value.__cause__ is None and e.value.__suppress_context__
    assert len(srv.requests) == 2
    assert not list(tmp_path.rglob('*.json'))


O_SERIES_400 = "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead."


def test_token_limit_renamed_when_the_server_asks(serve, key, tmp_path):
    "OpenAI's reasoning models refuse max_tokens with a 400; the client resends the limit as max_completion_tokens, from then on."
    def o_series(body):
        if 'max_tokens' in body: return (400, O_SERIES_400)
        return ('ok', f"limit {body['max_completion_tokens']}")
    srv = serve(o_series)
    llm = client(srv, tmp_path)
    assert llm.chat(ASK, max_tokens=16).text == 'limit 16'
    assert llm.chat(ASK, max_new_tokens=32).text == 'limit 32'
    assert [sorted(k for k in r['body'] if 'tokens' in k) for r in srv.requests] == [
        ['max_tokens'], ['max_completion_tokens'], ['max_completion_tokens']]
    assert cache_path(tmp_path, cache_key('teacher-model', ASK, {'max_tokens': 16})).exists()


def test_other_bad_requests_are_not_retried(serve, key, tmp_path):
    srv = serve((400, "Invalid 'messages': empty content"))
    with pytest.raises(LLMError, match="BadRequestError.*Invalid 'messages'"):
        client(srv, tmp_path).chat(ASK, max_tokens=16)
    assert len(srv.requests) == 1


def test_cache_replays_with_the_server_stopped(serve, key, tmp_path, monkeypatch):
    srv = serve(('ok', 'یک'), ('ok', 'دو'))
    llm = client(srv, tmp_path)
    first = llm.chat(ASK, temperature=0, max_tokens=16)
    other = llm.chat(ASK, temperature=1, max_tokens=16)
    assert (first.text, first.cached, other.text, other.cached) == ('یک', False, 'دو', False)
    assert len(srv.requests) == 2
    k1, k2 = (cache_key('teacher-model', ASK, p) for p in ({'temperature': 0, 'max_tokens': 16}, {'temperature': 1, 'max_tokens': 16}))
    assert k1 != k2 and cache_path(tmp_path, k1).is_file() and cache_path(tmp_path, k2).is_file()
    assert cache_path(tmp_path, k1).parent.name == k1[:2]
    entry = json.loads(cache_path(tmp_path, k1).read_text(encoding='utf-8'))
    assert entry['messages'] == ASK and entry['result']['text'] == 'یک'
    stop(srv)
    monkeypatch.delenv(KEY_ENV)
    replay = client(srv, tmp_path).chat(ASK, temperature=0, max_tokens=16)
    assert replay == ChatResult('یک', 11, 3, True, first.seconds)
    assert len(srv.requests) == 2
    assert not list(tmp_path.rglob('*.tmp'))


def test_reasoning_trace_is_kept_apart_and_cached(serve, key, tmp_path):
    "DeepSeek-R1 sends `reasoning_content` beside the answer: it lands in `reasoning`, and a replay keeps it."
    srv = serve(('ok', 'پاسخ صحیح: [C]', 'the gold is C, so reason towards C'))
    first = client(srv, tmp_path).chat(ASK)
    assert (first.text, first.reasoning) == ('پاسخ صحیح: [C]', 'the gold is C, so reason towards C')
    replay = client(srv, tmp_path).chat(ASK)
    assert replay.cached and replay.reasoning == first.reasoning and len(srv.requests) == 1
    plain = client(serve(('ok', 'no trace')), tmp_path).chat(ASK, seed=1)
    assert plain.reasoning == ''


def test_key_never_written(serve, key, tmp_path):
    srv = serve(('ok', 'fine'), (503,))
    llm = client(srv, tmp_path, max_retries=0)
    llm.chat(ASK, seed=1)
    with pytest.raises(LLMError) as e:
        llm.chat(ASK, seed=2)
    assert srv.requests[0]['auth'] == f'Bearer {KEY}'
    files = list(tmp_path.rglob('*'))
    assert any(f.suffix == '.json' for f in files)
    assert all(KEY not in f.read_text(encoding='utf-8') for f in files if f.is_file())
    for text in (repr(llm), str(llm), str(e.value), repr(e.value)): assert KEY not in text
    assert KEY_ENV in repr(llm)
    explicit = client(srv, tmp_path, api_key=KEY)
    assert KEY not in repr(explicit)


def test_missing_key_names_the_variable(monkeypatch, tmp_path):
    monkeypatch.delenv(KEY_ENV, raising=False)
    llm = OpenAIChat('https://api.example.invalid/v1', 'teacher-model', KEY_ENV, tmp_path)
    with pytest.raises(LLMError, match=KEY_ENV) as e:
        llm.chat(ASK)
    assert 'Colab' in str(e.value) and "api_key='EMPTY'" in str(e.value)


def test_local_server_needs_no_key(serve, monkeypatch, tmp_path):
    monkeypatch.delenv(KEY_ENV, raising=False)
    srv = serve(('ok', 'local'))
    assert client(srv, tmp_path).chat(ASK, max_new_tokens=8).text == 'local'
    assert srv.requests[0]['auth'] == 'Bearer EMPTY' and srv.requests[0]['body']['max_tokens'] == 8


def test_from_settings_and_cost():
    from gaokerena.config import load_settings
    s = load_settings('tiny', overrides={'llm.usd_per_million_input': 1.0, 'llm.usd_per_million_output': 2.0})
    llm = OpenAIChat.from_settings(s, model=s.llm.judge_model)
    assert (llm.name, llm.base_url, llm.timeout, llm.max_retries) == (s.llm.judge_model, s.llm.base_url, s.llm.timeout, s.llm.max_retries)
    assert OpenAIChat.from_settings(s).name == s.llm.teacher_model
    assert llm.cost_usd(ChatResult('x', 1_000_000, 500_000)) == pytest.approx(2.0)
    assert llm.cost_usd(ChatResult('x', 1_000_000, 500_000, cached=True)) == 0.0


SENTENCES = ['فشار خون بالا معمولاً علامتی ندارد.', 'سردرد و سرگیجه از علائم شایع هستند.',
             'بیمار باید فشار خون خود را منظم اندازه بگیرد.', 'پاسخ صحیح گزینه الف است.',
             'دیابت نوع دو با رژیم غذایی و ورزش کنترل می‌شود.', 'کدام گزینه درست است؟']
TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
            "{% if add_generation_prompt %}<|assistant|>{% endif %}")


@pytest.fixture(scope='module')
def tiny_chat_parts():
    "A BPE tokenizer trained on a few Persian sentences and a random 2-layer CohereForCausalLM."
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import CohereConfig, CohereForCausalLM, PreTrainedTokenizerFast
    specials = ['<pad>', '<unk>', '<|end|>', '<|user|>', '<|assistant|>', '<|system|>']
    bpe = Tokenizer(models.BPE(unk_token='<unk>'))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(SENTENCES, trainers.BpeTrainer(vocab_size=400, special_tokens=specials, show_progress=False,
                                                           initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token='<pad>', unk_token='<unk>', eos_token='<|end|>',
                                  additional_special_tokens=specials[3:], chat_template=TEMPLATE)
    torch.manual_seed(0)
    cfg = CohereConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                       rope_parameters={'rope_type': 'default', 'rope_theta': 10000.0},
                       pad_token_id=tok.pad_token_id, bos_token_id=None, eos_token_id=tok.eos_token_id)
    return CohereForCausalLM(cfg).eval(), tok


def test_local_chat(tiny_chat_parts, tmp_path):
    import torch
    model, tok = tiny_chat_parts
    llm = LocalChat(model, tok, tmp_path, name='tiny-cohere')
    res = llm.chat(ASK, temperature=0, max_new_tokens=8)
    prompt = tok.apply_chat_template(ASK, add_generation_prompt=True, tokenize=False)
    assert isinstance(res.text, str) and not res.cached
    assert res.prompt_tokens == len(tok(prompt, add_special_tokens=False)['input_ids'])
    assert 1 <= res.completion_tokens <= 8
    again = llm.chat(ASK, temperature=0, max_new_tokens=8)
    assert again.cached and again.text == res.text
    fresh = LocalChat(model, tok, None, name='tiny-cohere').chat(ASK, temperature=0, max_new_tokens=8)
    assert (fresh.text, fresh.cached) == (res.text, False)
    state = torch.random.get_rng_state()
    s1, s2 = (LocalChat(model, tok, None).chat(ASK, temperature=1.0, max_tokens=8, seed=3) for _ in range(2))
    assert s1.text == s2.text and torch.equal(state, torch.random.get_rng_state())
    pre = LocalChat(model, tok, None).chat(ASK, temperature=0, max_new_tokens=4, prefill='پاسخ صحیح')
    assert pre.text.startswith('پاسخ صحیح')
    assert 'tiny-cohere' in repr(llm)
    with pytest.raises(TypeError, match='frequency_penalty'):
        LocalChat(model, tok, None).chat(ASK, frequency_penalty=1.0)


def test_local_chat_samples_with_the_settings_top_k(tiny_chat_parts):
    "LocalChat samples with top-k and top-p (the authors' 50 and 1.0 by default): top-1 sampling is greedy decoding."
    model, tok = tiny_chat_parts
    greedy = LocalChat(model, tok, None).chat(ASK, temperature=0, max_new_tokens=10).text
    assert LocalChat(model, tok, None, top_k=1).chat(ASK, temperature=1.0, max_new_tokens=10, seed=4).text == greedy
    assert LocalChat(model, tok, None).chat(ASK, temperature=1.0, max_new_tokens=10, seed=4, top_k=1).text == greedy
    sampled = {LocalChat(model, tok, None).chat(ASK, temperature=1.0, max_new_tokens=10, seed=s).text for s in range(4)}
    assert len(sampled) > 1 and LocalChat(model, tok, None).top_k == 50


def test_the_rlaif_student_samples_as_its_chat_does(tiny_chat_parts, tmp_path):
    "The local student's batched first answers use its top_k too (rlaif's _local_answers), the same as its chat calls."
    from gaokerena.config import load_settings
    from gaokerena.rows import load_sample
    from gaokerena.evaluate import render_prompt
    from gaokerena.generation import generate
    from gaokerena.results import ResultStore
    from gaokerena.rounds import student_answers
    model, tok = tiny_chat_parts
    s = load_settings('tiny', overrides={'rlaif.student_max_new_tokens': 6, 'rlaif.student_temperature': 1.0})
    qs = load_sample('mcq')[:3]
    rows = student_answers(qs, LocalChat(model, tok, None, name='s', top_k=1), ResultStore(tmp_path/'a.jsonl'), s)
    assert [r['generation'] for r in rows] == generate(model, tok, [render_prompt(q, 'cot') for q in qs], 6)
    assert {r['setup']['top_k'] for r in rows} == {1}
