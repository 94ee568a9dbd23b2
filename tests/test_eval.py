"Chapter 02's runners, store and scoring on a tiny model built on the fly: resuming, batching, intervals, the published table."
import json, math
from functools import partial
import pytest
import torch
from gaokerena import evaluate as ev, evalrun, generation, results, sources
from gaokerena.rows import DataError, LETTERS, load_sample
from gaokerena.evaluate import bootstrap_ci, letter_logprobs, score_rows, score_table
from gaokerena.evalrun import evaluate_mcq
from gaokerena.extract import extract_choice
from gaokerena.generation import TransformersGenerator, generate
from gaokerena.results import PUBLISHED, ResultStore, result_key


@pytest.fixture(scope='module')
def tiny():
    "A random tiny aya (2 layers) and the sample's tokenizer, built in about a second."
    from gaokerena.models import build_tiny_model, build_tokenizer, sample_texts
    tok = build_tokenizer(sample_texts(), 3000)
    return build_tiny_model(tok, 64).eval(), tok


QUESTIONS = load_sample('mcq')[:11]


class Crash(RuntimeError):
    "Stands for a Colab disconnect inside the evaluation loop."


def crash_after(n: int, fn):
    "`fn`, except that call number n + 1 raises Crash."
    calls = []
    def wrapped(*args, **kw):
        calls.append(1)
        if len(calls) > n: raise Crash(f'call {len(calls)}')
        return fn(*args, **kw)
    return wrapped


class CrashingGenerator(TransformersGenerator):
    "A generator whose call number n + 1 raises Crash (the model's identity and sampling settings as the real one's)."
    def __init__(self, n: int, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.left = n
    def __call__(self, *args):
        if self.left == 0: raise Crash('disconnected')
        self.left -= 1
        return super().__call__(*args)


def cut_last_line(path, keep_chars: int = 15):
    "Leave only the first `keep_chars` bytes of the file's last line, as a crash during a write would."
    raw = path.read_bytes()
    start = raw[:-1].rfind(b'\n') + 1
    path.write_bytes(raw[:start + keep_chars])


def lines(path) -> list[dict]:
    return [json.loads(l) for l in path.read_text(encoding='utf-8').splitlines()]


def test_interrupted_sampling_resumes_to_the_uninterrupted_rows(tiny, tmp_path):
    model, tok = tiny
    run = partial(evaluate_mcq, model, tok, QUESTIONS, model_name='tiny', benchmark='anatomy', mode='generate',
                  style='cot', samples=3, temperature=1.0, max_new_tokens=8, batch_size=4, seed=11)
    whole = run(store=ResultStore(tmp_path/'whole.jsonl'))
    path = tmp_path/'cut.jsonl'
    with pytest.raises(Crash):
        run(store=ResultStore(path), generator=CrashingGenerator(3, model, tok, batch_size=4))
    assert len(lines(path)) == 12
    cut_last_line(path)
    resumed = run(store=ResultStore(path))
    stored = lines(path)
    keys = [result_key(r) for r in stored]
    assert len(stored) == len(set(keys)) == len(QUESTIONS) * 3
    assert [(r['generation'], r['answer']) for r in resumed] == [(r['generation'], r['answer']) for r in whole]
    assert sorted(keys) == sorted(result_key(r) for r in whole)
    assert len({r['generation'] for r in whole}) > 1
    again = run(store=ResultStore(path), generator=CrashingGenerator(0, model, tok, batch_size=4))
    assert again == resumed and len(lines(path)) == len(stored)


def test_interrupted_loglik_resumes(tiny, tmp_path, monkeypatch):
    model, tok = tiny
    run = partial(evaluate_mcq, model, tok, QUESTIONS, model_name='tiny', benchmark='ibmsee', batch_size=3)
    whole = run(store=ResultStore(tmp_path/'whole.jsonl'))
    path = tmp_path/'cut.jsonl'
    monkeypatch.setattr(evalrun, 'letter_logprobs', crash_after(2, letter_logprobs))
    with pytest.raises(Crash): run(store=ResultStore(path))
    monkeypatch.undo()
    cut_last_line(path)
    assert len(ResultStore(path).rows) == 5
    resumed = run(store=ResultStore(path))
    assert len(lines(path)) == len(QUESTIONS) == len({result_key(r) for r in lines(path)})
    assert [r['answer'] for r in resumed] == [r['answer'] for r in whole]
    for a, b in zip(resumed, whole):
        assert a['logprobs'] == pytest.approx(b['logprobs'], abs=1e-5)
        assert a['answer'] == max(a['logprobs'], key=a['logprobs'].get) and a['gold'] in LETTERS


def test_padding_does_not_change_scores(tiny):
    model, tok = tiny
    prompts = [ev.render_prompt(q) for q in QUESTIONS[:5]]
    lengths = {len(tok(p)['input_ids']) for p in prompts}
    assert len(lengths) > 1
    batched = letter_logprobs(model, tok, prompts)
    alone = torch.cat([letter_logprobs(model, tok, [p]) for p in prompts])
    assert torch.allclose(batched, alone, atol=1e-4)
    assert (batched.exp().sum(-1) < 1).all()


def test_mode_and_sample_errors(tiny, tmp_path):
    model, tok = tiny
    store = ResultStore(tmp_path/'r.jsonl')
    with pytest.raises(ValueError, match='samples must be 1'):
        evaluate_mcq(model, tok, QUESTIONS, store, 'tiny', 'b', mode='loglik', samples=2)
    with pytest.raises(ValueError, match="'loglik' or 'generate'"):
        evaluate_mcq(model, tok, QUESTIONS, store, 'tiny', 'b', mode='vote')


def test_store_errors_name_file_and_line(tmp_path):
    path = tmp_path/'r.jsonl'
    good = {'model': 'm', 'benchmark': 'b', 'task': 't', 'qid': '1', 'sample': 0}
    path.write_text(json.dumps(good) + '\n{broken\n' + json.dumps({**good, 'qid': '2'}) + '\n')
    with pytest.raises(DataError, match=r'r\.jsonl: line 2: not valid JSON'): ResultStore(path)
    path.write_text(json.dumps(good) + '\n' + json.dumps({'benchmark': 'b', 'qid': 3}) + '\n')
    with pytest.raises(DataError, match=r"line 2: field 'model' missing"): ResultStore(path)


def test_store_keeps_one_row_per_key(tmp_path):
    path = tmp_path/'r.jsonl'
    row = {'model': 'm', 'benchmark': 'b', 'task': 't', 'qid': 7, 'sample': 1, 'answer': 'A'}
    path.write_text(json.dumps(row) + '\n' + json.dumps({**row, 'answer': 'B', 'qid': '7'}) + '\n')
    st = ResultStore(path)
    assert [r['answer'] for r in st.rows] == ['A'] and st.done() == {('m', 'b', 't', '7', 1, '')}
    assert st.append([{**row, 'answer': 'C'}]) == [] and st.append([{**row, 'sample': 2}, {**row, 'sample': 2}]) != []
    assert len(lines(path)) == 3
    with pytest.raises(KeyError, match='1 results missing'): st.select([('m', 'b', 't', '8', 0, '')])


def rows_for(benchmark, correct, n, samples=1, nonanswer='none'):
    "`n` questions of `benchmark`, `correct` of them answered right, each with `samples` rows; the rest non-answers."
    return [{'benchmark': benchmark, 'qid': q, 'sample': s, 'gold': 'A', 'answer': 'A' if q < correct else nonanswer}
            for q in range(n) for s in range(samples)]


def test_non_answers_stay_in_the_denominator():
    s = score_rows(rows_for('ibmsee', 50, 168) + [])
    assert (s['n'], s['correct'], s['unanswered'], s['wrong']) == (168, 50, 118, 0)
    assert s['accuracy'] == pytest.approx(100 * 50 / 168)
    mixed = rows_for('ibmsee', 2, 4, nonanswer='B') + [{'benchmark': 'ibmsee', 'qid': 9, 'gold': 'C', 'answer': 'multiple'}]
    assert (score_rows(mixed)['wrong'], score_rows(mixed)['unanswered'], score_rows(mixed)['accuracy']) == (2, 1, 40)


def test_mmlu_average_is_pooled_not_a_mean_of_subjects():
    rows = rows_for('medical_genetics', 100, 100) + rows_for('professional_medicine', 0, 272) + rows_for('ibmsee', 168, 168)
    t = score_table(rows, n_boot=200)
    assert t['mmlu_avg']['accuracy'] == pytest.approx(100 * 100 / 372) and t['mmlu_avg']['n'] == 372
    assert t['pooled']['accuracy'] == pytest.approx(100 * 268 / 540)
    assert list(t) == ['medical_genetics', 'professional_medicine', 'ibmsee', 'mmlu_avg', 'pooled']
    assert 'mmlu_avg' not in score_table(rows_for('ibmsee', 1, 2), n_boot=10)


def test_bootstrap_intervals_are_seeded_and_resample_questions():
    rows = rows_for('anatomy', 54, 135)
    a, b = (score_rows(rows, 1000, 3) for _ in range(2))
    assert (a['ci_low'], a['ci_high']) == (b['ci_low'], b['ci_high'])
    assert a['ci_low'] < 40 < a['ci_high'] and 14 < a['ci_high'] - a['ci_low'] < 19
    five = score_rows(rows_for('anatomy', 54, 135, samples=5), 1000, 3)
    assert five['n'] == 675 and five['questions'] == 135 and five['accuracy'] == pytest.approx(40)
    assert five['ci_high'] - five['ci_low'] == pytest.approx(a['ci_high'] - a['ci_low'], abs=2)
    assert bootstrap_ci([1, 1, 1]) == (1.0, 1.0) and all(math.isnan(x) for x in bootstrap_ci([]))


V_SIZES = {'anatomy': 135, 'medical_genetics': 100, 'college_medicine': 173, 'clinical_knowledge': 265,
           'professional_medicine': 272, 'college_biology': 144}


def test_published_mmlu_averages_follow_from_their_subjects():
    "Each system's MMLU average is its subjects' correct answers pooled over 1089 (to the papers' rounding)."
    systems = {m for t, m, _ in PUBLISHED if t == 'v_straight'}
    assert systems == {'gaokerena-v', 'aya-expanse-8b', 'qwen2.5-7b', 'persianmind', 'medmobile-gemma2b', 'medmobile-parsinlu'}
    slips = set()
    for m in systems:
        correct = sum(round(PUBLISHED[('v_straight', m, s)] * n / 100) for s, n in V_SIZES.items())
        pooled = 100 * correct / sum(V_SIZES.values())
        if abs(pooled - PUBLISHED[('v_straight', m, 'mmlu_avg')]) >= 0.011: slips.add((m, correct))
    assert slips == {('medmobile-parsinlu', 337)}  # published 30.99; 337/1089 = 30.95 (flagged in PUBLISHED)
    assert results.published('v_straight', 'gaokerena-v') == {**{s: PUBLISHED[('v_straight', 'gaokerena-v', s)] for s in V_SIZES},
                                                         'mmlu_avg': 49.31, 'ibmsee': 38.69}


def test_compare_published_flags_values_outside_the_interval():
    t = score_table(rows_for('ibmsee', 65, 168), n_boot=500)
    df = results.compare_published(t, 'v_straight', 'gaokerena-v')
    assert df.loc['ibmsee', 'published'] == 38.69 and df.loc['ibmsee', 'accuracy'] == round(100 * 65 / 168, 2)
    assert bool(df.loc['ibmsee', 'published_in_ci'])
    low = results.compare_published(score_table(rows_for('ibmsee', 10, 168), n_boot=500), 'v_straight', 'gaokerena-v')
    assert not bool(low.loc['ibmsee', 'published_in_ci'])


def test_spread_limit_keeps_every_benchmark():
    groups = {b: list(range(n)) for b, n in [('anatomy', 19), ('ibmsee', 2), ('college_biology', 19)]}
    s = sources.spread_limit(groups, 7)
    assert {b: len(v) for b, v in s.items()} == {'anatomy': 3, 'ibmsee': 2, 'college_biology': 2}
    assert sources.spread_limit(groups, 0) == groups and sources.spread_limit(groups, 100) == groups


def test_sample_benchmarks_and_comparison_models(tmp_path):
    from gaokerena.config import load_settings, run_context
    ctx = run_context('tiny', tmp_path)
    b = sources.load_benchmarks(ctx, 14)
    assert list(b) == list(sources.BENCHMARKS) and sum(map(len, b.values())) == 14
    assert all(q['subject'] == name for name, qs in b.items() for q in qs)
    assert generation.comparison_models(load_settings('tiny')) == {}
    h100 = generation.comparison_models(load_settings('h100'))
    assert h100['gaokerena-v'] == 'gaokerena/gaokerena-v1.0' and set(h100) <= {m for _, m, _ in PUBLISHED}
    bad = load_settings('h100', {'profile.eval_models': 'aya, x=y'})
    with pytest.raises(ValueError, match="'aya' is not name=model_id"): generation.comparison_models(bad)


def test_load_eval_model_puts_an_adapter_on_its_base(tiny, tmp_path):
    "A local LoRA adapter folder loads onto the base its config names; a tokenizer without pad borrows UNK."
    from peft import LoraConfig, get_peft_model
    from gaokerena.config import run_context
    model, tok = tiny
    base_dir, adapter_dir = tmp_path/'base', tmp_path/'adapter'
    model.save_pretrained(base_dir)
    tok.save_pretrained(base_dir)
    cfg = json.loads((base_dir/'tokenizer_config.json').read_text())
    cfg.pop('pad_token', None)
    (base_dir/'tokenizer_config.json').write_text(json.dumps(cfg))
    peft = get_peft_model(model.__class__.from_pretrained(base_dir), LoraConfig(r=2, target_modules=['q_proj'], init_lora_weights=False))
    peft.save_pretrained(adapter_dir)
    ctx = run_context('tiny', tmp_path/'run')
    loaded, ltok = generation.load_eval_model(ctx, str(adapter_dir))
    assert hasattr(loaded, 'peft_config') and not loaded.training
    assert ltok.pad_token == ltok.unk_token == '<UNK>' and ltok.padding_side == 'left'
    from gaokerena.models import load_model_and_tokenizer
    with pytest.raises(ValueError, match='pad token must exist'): load_model_and_tokenizer(ctx, str(base_dir))
    ids = torch.tensor([tok.encode('پاسخ صحیح')])
    with torch.no_grad():
        assert torch.allclose(loaded(ids).logits, peft.eval()(ids).logits, atol=1e-5)
        assert not torch.allclose(loaded(ids).logits, model(ids).logits, atol=1e-3)
    plain, _ = generation.load_eval_model(ctx, str(base_dir))
    assert not hasattr(plain, 'peft_config')


def test_chat_prompts_without_a_template_are_plain_text(tiny):
    _, tok = tiny
    raw = tok.__class__(tokenizer_object=tok.backend_tokenizer, bos_token=tok.bos_token, pad_token=tok.pad_token)
    assert raw.chat_template is None and generation.chat_prompts(raw, ['سلام']) == ['سلام']
    enc = generation.encode_chat(raw, ['سلام', 'سلام دوباره'])
    assert enc['input_ids'][1, 0].item() == raw.bos_token_id and enc['attention_mask'][0, 0].item() == 0
    templated = generation.chat_prompts(tok, ['سلام'])[0]
    assert templated.startswith('<BOS_TOKEN><|START_OF_TURN_TOKEN|><|USER_TOKEN|>سلام') and templated.endswith('<|CHATBOT_TOKEN|>')


def test_letters_must_be_single_tokens_after_the_prefix(tiny):
    _, tok = tiny
    contexts, letters = ev.answer_contexts(tok, ['سلام'], 'پاسخ صحیح: گزینه [')    # 'hello'; 'the correct answer: option ['
    assert len(set(letters[0])) == 4 and tok.decode(letters[0]) == 'ABCD'
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    wl = Tokenizer(models.WordLevel({'<unk>': 0, 'A': 1, 'B': 2, 'x': 3}, unk_token='<unk>'))
    wl.pre_tokenizer = pre_tokenizers.Whitespace()
    with pytest.raises(ValueError, match=r"the letters A-D are not one token each .*choose another eval.answer_prefix"):
        ev.answer_contexts(PreTrainedTokenizerFast(tokenizer_object=wl, unk_token='<unk>'), ['x'], ' ')


def test_vllm_is_optional(tiny, tmp_path):
    "Without vLLM (or a GPU) the runner uses transformers; asking for vLLM then is a clear error."
    from gaokerena.config import run_context
    from gaokerena.models import ModelRecipe
    model, tok = tiny
    if generation.vllm_available(): pytest.skip('vLLM and a GPU are present')
    ctx = run_context('tiny', tmp_path, overrides={'eval.top_k': 7})
    gen = generation.make_generator(ctx, ModelRecipe('tiny'), model, tok)
    assert isinstance(gen, TransformersGenerator) and (gen.top_k, gen.batch_size) == (7, ctx.settings.eval.batch_size)
    assert gen(['سلام'], 3) == generate(model, tok, ['سلام'], 3)
    loaded = generation.make_generator(ctx, ModelRecipe('tiny'))            # no model given: the recipe is loaded
    assert loaded.identity != gen.identity and loaded.model is not None
    with pytest.raises(RuntimeError, match=r"gaokerena\[vllm\]"):
        generation.make_generator(run_context('tiny', tmp_path, overrides={'profile.use_vllm': 'true'}), ModelRecipe('tiny'), model, tok)


def test_fast_decoding_samples_the_library_path(tiny):
    "`generate` (grouped heads, buffered cache, decoding mask) samples the tokens `model.generate`'s default path samples."
    model, tok = tiny
    assert model.config.num_key_value_heads < model.config.num_attention_heads      # grouped-query attention
    prompts = [ev.render_prompt(q, 'cot') for q in QUESTIONS[:7]]
    enc = generation.encode_chat(tok, prompts)
    assert len(set(enc['attention_mask'].sum(-1).tolist())) > 3                       # a padded batch
    torch.manual_seed(5)
    plain = model.generate(**enc, max_new_tokens=40, do_sample=True, temperature=1.0, top_p=1.0, top_k=50,
                           pad_token_id=tok.pad_token_id)
    fast = generate(model, tok, prompts, 40, temperature=1.0, seed=5)
    assert fast == tok.batch_decode(plain[:, enc['input_ids'].shape[1]:], skip_special_tokens=True)
    assert len(set(fast)) == len(fast) and model.config._attn_implementation == 'sdpa'


def test_decoding_mask_is_sdpas_mask():
    "For a decoding step the padding mask is the whole mask (None without padding); anything else is sdpa's own."
    from transformers.masking_utils import sdpa_mask
    pad = torch.ones(3, 9, dtype=torch.bool)
    pad[0, :4] = pad[2, :1] = False
    for q, kv, mask in [(1, 9, pad), (1, 9, torch.ones_like(pad)), (9, 9, pad)]:
        kw = dict(batch_size=3, q_length=q, kv_length=kv, q_offset=kv - q, attention_mask=mask)
        got, want = generation.decoding_mask(**kw), sdpa_mask(**kw)
        assert (got is None and want is None) or torch.equal(got.expand_as(want), want)
    assert generation.decoding_mask(batch_size=3, q_length=1, kv_length=9, q_offset=8, attention_mask=pad).shape == (3, 1, 1, 9)


def test_buffered_layer_holds_what_concatenation_holds():
    from transformers.cache_utils import DynamicLayer
    buffered, plain = generation.BufferedLayer(capacity=12), DynamicLayer()
    for n in (5, 1, 1, 1):
        k, v = torch.randn(2, 3, n, 4), torch.randn(2, 3, n, 4)
        got, want = buffered.update(k, v), plain.update(k, v)
        assert all(torch.equal(a, b) for a, b in zip(got, want))
    assert buffered.get_seq_length() == 8 and got[0].data_ptr() == buffered.buffers[0].data_ptr()
    buffered.crop(-2)
    buffered.update(torch.ones(2, 3, 1, 4), torch.ones(2, 3, 1, 4))
    assert buffered.get_seq_length() == 7 and buffered.keys[:, :, -1].eq(1).all()
    with pytest.raises(ValueError, match=r"holds 12 tokens: 7 \+ 6 do not fit"):
        buffered.update(torch.randn(2, 3, 6, 4), torch.randn(2, 3, 6, 4))


def test_batches_are_cut_by_length_and_rows_keep_the_callers_order(tmp_path):
    items = ['ccc', 'a', 'bbbb', 'dd', 'e', 'ffffff', 'gg']
    keys = [('m', 'b', 't', str(i), 0) for i in range(len(items))]
    seen = []
    def compute(batch, b):
        seen.append((b, batch))
        return [{'model': 'm', 'benchmark': 'b', 'task': 't', 'qid': str(items.index(x)), 'sample': 0, 'x': x} for x in batch]
    rows = results.run_batches(items, keys, ResultStore(tmp_path/'r.jsonl'), compute, 3, 'demo', [len(x) for x in items])
    assert seen == [(0, ['a', 'e', 'dd']), (1, ['gg', 'ccc', 'bbbb']), (2, ['ffffff'])]   # stable: 'dd' before 'gg'
    assert [r['x'] for r in rows] == items
    with pytest.raises(ValueError, match='7 items but 2 lengths'):
        results.run_batches(items, keys, ResultStore(tmp_path/'s.jsonl'), compute, 3, 'demo', [1, 2])


def test_a_finished_run_needs_no_model(tiny, tmp_path):
    model, tok = tiny
    store = ResultStore(tmp_path/'r.jsonl')
    first = evaluate_mcq(model, tok, QUESTIONS, store, 'tiny', 'b', mode='generate', max_new_tokens=3, batch_size=4)
    identity = first[0]['setup']['model']      # rows are keyed by the model's identity: say which model, without loading it
    assert evaluate_mcq(None, None, QUESTIONS, store, 'tiny', 'b', mode='generate', max_new_tokens=3, identity=identity) == first


def test_generated_answers_are_read_with_the_question_and_options(tiny, tmp_path):
    "An exception question's 'X is wrong' and an option named by its words are read only with the question and options."
    model, tok = tiny
    q = {**QUESTIONS[0], 'question': 'کدام گزینه نادرست است؟'}
    named = {**QUESTIONS[1], 'options': {**QUESTIONS[1]['options'], 'C': 'عصب اولنار در آرنج'}}
    said = {q['id']: 'گزینه [B] نادرست است.', named['id']: 'پاسخ صحیح عصب اولنار در آرنج است.'}
    class Scripted(TransformersGenerator):
        def __call__(self, prompts, *args): return [said[x['id']] for p in prompts for x in (q, named) if ev.render_prompt(x) == p]
    rows = evaluate_mcq(model, tok, [q, named], ResultStore(tmp_path/'r.jsonl'), 'tiny', 'b', mode='generate',
                        generator=Scripted(model, tok))
    assert [r['answer'] for r in rows] == ['B', 'C']
    assert [extract_choice(said[x['id']]) for x in (q, named)] == ['invalid', 'invalid']


# --- the authors' sampling, the same for every backend ----------------------------------------------------------------

def test_greedy_ignores_the_models_generation_config_and_top_k_reaches_generate(tiny):
    model, tok = tiny
    prompts = [ev.render_prompt(q) for q in QUESTIONS[:3]]
    greedy = generate(model, tok, prompts, 12)
    from gaokerena.models import build_tiny_model
    penalised = build_tiny_model(tok, 64).eval()
    penalised.generation_config.repetition_penalty = 3.0          # as Qwen2.5's generation_config adds 1.05
    penalised.generation_config.no_repeat_ngram_size = 2
    enc = generation.encode_chat(tok, prompts)
    library = tok.batch_decode(penalised.generate(**enc, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id)
                               [:, enc['input_ids'].shape[1]:], skip_special_tokens=True)
    assert library != greedy, 'the model config would change a greedy table'
    assert generate(penalised, tok, prompts, 12) == greedy
    assert generate(model, tok, prompts, 12, temperature=1.0, seed=1, top_k=1) == greedy     # top-1 sampling is greedy
    assert generate(model, tok, prompts, 12, temperature=1.0, seed=1) != greedy                # top-50 sampling is not


def test_the_settings_hold_the_authors_sampling():
    from gaokerena.config import load_settings
    for profile in ('tiny', 'colab-l4', 'colab-a100', 'h100'):
        e = load_settings(profile).eval
        assert (e.top_k, e.top_p) == (50, 1.0)


# --- honest letter scoring: after an answer prefix, with the letter's token in context ----------------------------------

def letter_logprobs_by_hand(model, tok, prompt, prefix):
    "log P(letter | chat prompt + prefix) from one forward pass per letter over the whole text, no batching, no padding."
    text = generation.chat_prompts(tok, [prompt])[0] + prefix
    out = []
    for letter in LETTERS:
        ids = tok(text + letter, add_special_tokens=tok.chat_template is None)['input_ids']
        with torch.no_grad(): logits = model(torch.tensor([ids[:-1]])).logits[0, -1].float()
        out.append(torch.log_softmax(logits, -1)[ids[-1]].item())
    return out


@pytest.fixture(scope='module')
def sentencepiece():
    "A SentencePiece-style tokenizer (words marked '▁') trained here, and a random tiny model of its vocabulary."
    from tokenizers import SentencePieceBPETokenizer
    from transformers import PreTrainedTokenizerFast
    from gaokerena.models import build_tiny_model, sample_texts
    # 'the correct answer: option [X] is. Option X is right.' and the letters alone
    texts = sample_texts()[:300] + [f'پاسخ صحیح: گزینه [{l}] است. گزینه {l} درست است. A B C D' for l in LETTERS] * 50
    sp = SentencePieceBPETokenizer()
    sp.train_from_iterator(texts, vocab_size=800, special_tokens=['<unk>', '<pad>', '<s>', '</s>'], show_progress=False)
    tok = PreTrainedTokenizerFast(tokenizer_object=sp._tokenizer, unk_token='<unk>', pad_token='<pad>', bos_token='<s>',
                                  eos_token='</s>', padding_side='left')
    return build_tiny_model(tok, 32).eval(), tok


@pytest.mark.parametrize('which', ['bpe', 'sentencepiece'])
def test_the_letter_is_scored_after_the_answer_prefix(tiny, sentencepiece, which):
    model, tok = tiny if which == 'bpe' else sentencepiece
    prefix = 'پاسخ صحیح: گزینه ['          # 'the correct answer: option ['
    prompts = [ev.render_prompt(q) for q in QUESTIONS[:4]]
    scored = letter_logprobs(model, tok, prompts, prefix)
    for row, prompt in zip(scored, prompts):
        assert row.tolist() == pytest.approx(letter_logprobs_by_hand(model, tok, prompt, prefix), abs=1e-4)
    assert not torch.allclose(scored, letter_logprobs(model, tok, prompts), atol=1e-3), 'not the first token of the answer'
    _, letters = ev.answer_contexts(tok, prompts[:1], prefix)
    if which == 'sentencepiece':        # the letter alone is '▁A', a word's start; after «[» it is 'A'
        assert tok.convert_ids_to_tokens(tok.encode('A')) == ['▁A'] and tok.convert_ids_to_tokens(letters[0]) == list(LETTERS)


def test_letter_agreement_counts_written_options_only():
    scored = [{'benchmark': b, 'qid': i, 'answer': a} for b, answers in (('anatomy', 'AABB'), ('ibmsee', 'CD')) for i, a in enumerate(answers)]
    written = [{'benchmark': 'anatomy', 'qid': i, 'answer': a} for i, a in enumerate(['A', 'B', 'none', 'B'])]
    written += [{'benchmark': 'ibmsee', 'qid': 0, 'answer': 'D'}, {'benchmark': 'ibmsee', 'qid': 1, 'answer': 'D'}]
    t = ev.letter_agreement(scored, written)
    assert t.loc['anatomy', ['questions', 'written option', 'agree']].tolist() == [4, 3, 2]
    assert t.loc['all', 'agreement %'] == pytest.approx(100 * 3 / 5) and t.loc['ibmsee', 'no option written %'] == 0
    assert list(t.index) == ['anatomy', 'ibmsee', 'all']


# --- ours beside the paper, with our interval ---------------------------------------------------------------------------

def test_compare_published_says_nothing_where_nothing_was_published():
    t = score_table(rows_for('ibmsee', 65, 168) + rows_for('kopp_larger', 3, 10), n_boot=300)
    df = results.compare_published(t, 'v_straight', 'gaokerena-v')
    assert df.loc['ibmsee', 'published_in_ci'] is True and df.loc['kopp_larger', 'published_in_ci'] is None
    assert df.loc['ibmsee', 'ci_low'] < df.loc['ibmsee', 'accuracy'] < df.loc['ibmsee', 'ci_high']


# --- floors and paired comparisons ------------------------------------------------------------------------------------

def _rows(right: str, benchmark: str = 'ibmsee') -> list[dict]:
    "One result row per question; question i answered right when right[i] == '1'."
    return [{'benchmark': benchmark, 'qid': i, 'gold': 'B', 'answer': 'B' if x == '1' else 'C'} for i, x in enumerate(right)]


def test_majority_letter_baseline_is_what_always_answering_it_scores():
    golds = [{'gold': g} for g in 'AAB' + 'D' * 7]
    base = ev.majority_letter_baseline(golds)
    assert (base['letter'], base['gold share %'], base['uniform guess %'], base['questions']) == ('D', 70.0, 25.0, 10)
    always = ev.score_rows([{**r, 'benchmark': 'x', 'qid': i, 'answer': 'D'} for i, r in enumerate(golds)], n_boot=10)
    assert always['accuracy'] == base['gold share %']


@pytest.mark.parametrize('only_a, only_b', [(0, 0), (1, 0), (3, 9), (12, 0), (40, 25), (150, 190), (500, 500)])
def test_mcnemar_exact_equals_scipys_two_sided_binomial_test(only_a, only_b):
    from scipy.stats import binomtest
    want = 1.0 if only_a + only_b == 0 else binomtest(only_a, only_a + only_b, 0.5).pvalue
    assert abs(ev.mcnemar_exact(only_a, only_b) - want) < 1e-12 * max(1, want) + 1e-300


def test_paired_comparison_sees_a_gap_that_overlapping_intervals_hide():
    "B right wherever A is and on 12 more of 168: the two intervals overlap, the paired test finds the gap."
    a, b = _rows('1' * 60 + '0' * 108), _rows('1' * 72 + '0' * 96)
    pc = ev.paired_comparison(b, a, n_boot=500)
    assert (pc['questions'], pc['only_a'], pc['only_b']) == (168, 12, 0)
    assert abs(pc['difference'] - 100 * 12 / 168) < 1e-9 and pc['ci_low'] > 0 and pc['p_mcnemar'] < 0.001
    lo_a, hi_a = bootstrap_ci([1] * 60 + [0] * 108); lo_b, _ = bootstrap_ci([1] * 72 + [0] * 96)
    assert hi_a > lo_b
    same = ev.paired_comparison(a, a, n_boot=200)
    assert same['difference'] == 0 and same['p_mcnemar'] == 1.0 and same['ci_low'] == same['ci_high'] == 0


def test_paired_comparison_aligns_questions_and_refuses_different_sets():
    a = _rows('10') + _rows('1', 'anatomy')
    b = list(reversed(_rows('01') + _rows('0', 'anatomy')))         # another order: aligned by (benchmark, qid)
    pc = ev.paired_comparison(a, b, n_boot=50)
    assert (pc['only_a'], pc['only_b'], pc['questions']) == (2, 1, 3)
    with pytest.raises(ValueError, match='same questions'): ev.paired_comparison(a, b[:2])
    samples = [{**r, 'sample': s} for r in _rows('1') for s in range(2)] + [{**_rows('0')[0], 'sample': 2}]
    several = ev.paired_comparison(samples, _rows('0'), n_boot=50)     # a question with samples counts by its share right
    assert abs(several['difference'] - 100 * 2 / 3) < 1e-9 and several['p_mcnemar'] is None


def test_comparison_set_is_answered_scored_and_judged_and_resumes(tiny, tmp_path):
    "run_comparison with a local model as the comparison set: its own straight answers scored, its free-form answers judged against ours in both orders by the local judge, its table saved for the report, one ledger stage; a second run computes nothing."
    from gaokerena.config import run_context
    from gaokerena.evalrun import OUTCOMES, by_qid, run_comparison, straight_settings
    from gaokerena.ledger import COMPARISON_FILE, read_ledger
    from gaokerena.models import ModelRecipe, build_tiny_model
    model, tok = tiny
    other = build_tiny_model(tok, 64, seed=1).eval()     # other weights than ours
    for name, m in (('ours', model), ('other', other)):
        m.save_pretrained(tmp_path/name)
        tok.save_pretrained(tmp_path/name)
    ctx = run_context('tiny', tmp_path/'run', overrides={'profile.eval_models': f"other={tmp_path/'other'}", 'eval.max_new_tokens': 6,
                                                         'eval.judge_max_tokens': 6, 'eval.bootstrap_samples': 100})
    benchmarks = {'anatomy': QUESTIONS[:3], 'ibmsee': QUESTIONS[3:5]}
    freeform = {'mf3qa': [{'id': 'f1', 'question': 'فشار خون بالا چیست؟', 'answer': 'پاسخ پزشک'}]}   # what is high blood pressure? / the doctor's answer
    answers = {'mf3qa': [{'qid': 'f1', 'generation': 'پاسخ ما'}]}                                    # our answer
    store = ResultStore(tmp_path/'run'/'results.jsonl')
    comparison = run_comparison(ctx, ModelRecipe(str(tmp_path/'ours'), name='ours'), benchmarks, freeform, answers, store)
    assert list(comparison) == ['other']
    mcq, judged = comparison['other']['mcq'], comparison['other']['freeform']['mf3qa']
    assert (mcq['anatomy']['n'], mcq['ibmsee']['n'], mcq['pooled']['questions']) == (3, 2, 5)
    written = lambda m: by_qid(evaluate_mcq(m, tok, QUESTIONS[:3], ResultStore(tmp_path/f'{id(m)}.jsonl'), 'x', 'anatomy',
                                            mode='generate', **straight_settings(ctx.settings)))
    stored = by_qid([r for r in store.rows if r['model'] == 'other' and r['benchmark'] == 'anatomy'])
    assert stored == written(other) != written(model)      # the comparison model answered, not ours
    verdicts = [r for r in store.rows if r['model'] == 'ours vs other']
    assert sorted((r['first'], r['second']) for r in verdicts) == [('other', 'ours'), ('ours', 'other')]   # both orders
    assert judged['judge']['verdicts'] == 2 and abs(sum(judged[o]['rate'] for o in OUTCOMES) - 100) < 1e-9
    saved = json.loads((ctx.stage_dir('02_eval')/COMPARISON_FILE).read_text())
    assert len(store.rows) == 5 + 1 + 2 and list(saved) == ['other (v_straight), accuracy %']   # for the run report
    stages = read_ledger(ctx.run_dir)
    assert stages.stage.tolist() == ['02_eval.comparison'] and stages.iloc[0]['extra']['models'] == ['other']
    again = run_comparison(ctx, ModelRecipe(str(tmp_path/'ours'), name='ours'), benchmarks, freeform, answers, ResultStore(store.path))
    assert again == comparison and len(ResultStore(store.path).rows) == 8
