"""No stale reuse: every reusable artifact is reused only when what it was made from is this run's.

Per artifact, one change that matters is recomputed (or refused, naming the changed keys) and one that does not is reused."""
import json
import pytest
from gaokerena.config import run_context
from gaokerena.sources import load_prepared, prepare_data, prepared_digest
from gaokerena.evalrun import evaluate_mcq
from gaokerena.results import generate_answers
from gaokerena.generation import TransformersGenerator
from gaokerena.results import ResultStore, result_key
from gaokerena.llm import LocalChat
from gaokerena.models import build_tiny_model, build_tokenizer, load_model_and_tokenizer, sample_texts, tiny_base_dir
from gaokerena.stores import (StaleArtifact, changed_keys, check_spec, fingerprint, keyed_folder, keyed_folders,
                              model_identity, write_json)
from gaokerena.rows import load_sample

QUESTIONS = load_sample('mcq')[:6]


@pytest.fixture(scope='module')
def tok():
    return build_tokenizer(sample_texts(), 3000)


def test_fingerprint_names_exactly_the_changed_keys(tmp_path):
    spec = {'hyperparameters': {'beta': 0.1, 'learning_rate': 1e-6, 'seed': 42}, 'base': {'model': 'tiny'}, 'data': 'ab'}
    assert fingerprint(spec) == fingerprint(dict(reversed(list(spec.items()))))
    other = {**spec, 'hyperparameters': {**spec['hyperparameters'], 'beta': 5, 'learning_rate': 0.5}}
    assert changed_keys(spec, other) == ['hyperparameters.beta', 'hyperparameters.learning_rate']
    a, b = keyed_folder(tmp_path, spec), keyed_folder(tmp_path, other)
    assert a != b and keyed_folder(tmp_path, spec) == a and set(keyed_folders(tmp_path)) == {a, b}
    write_json(tmp_path/'spec.json', spec)
    with pytest.raises(StaleArtifact, match=r"changed hyperparameters\.beta \(0\.1 -> 5\), hyperparameters\.learning_rate"):
        check_spec(tmp_path/'spec.json', other, 'the thing', 'start afresh')


# --- prepared data: read by name, so a different source stops with the changed keys ----------------------------------

def test_prepared_data_from_another_source_is_refused(tmp_path):
    ctx = run_context('tiny', tmp_path)
    prepare_data(ctx)
    rows = load_prepared(ctx, 'mcq')
    assert rows and prepared_digest(ctx, 'mcq') == json.loads((tmp_path/'data'/'digests.json').read_text())['mcq']
    again = run_context('tiny', tmp_path, overrides={'eval.batch_size': 3, 'dpo.beta': 5})   # changes no data: reused
    assert load_prepared(again, 'mcq') == rows
    hub = run_context('colab-a100', tmp_path)           # same run folder, another source: the world's files must not be read
    with pytest.raises(StaleArtifact, match=r"changed .*source \('world' -> 'hub'\).*run chapter 00_data again"):
        load_prepared(hub, 'mcq')


def test_prepared_data_of_a_changed_world_is_refused(tmp_path):
    "The world's data is the tiny profile's own (no stand-ins asked); its spec names the seed and what it generated, so a changed world is not reused."
    from gaokerena.world import WORLD_SEED
    ctx = run_context('tiny', tmp_path, overrides={'profile.allow_stand_ins': False})
    prepare_data(ctx)
    path = tmp_path/'data'/'spec.json'
    spec = json.loads(path.read_text())
    assert spec['source'] == 'world' and spec['world']['seed'] == WORLD_SEED and len(spec['world']['digest']) == 16
    path.write_text(json.dumps({**spec, 'world': {**spec['world'], 'digest': '0' * 16}}))   # as if the world's generator had changed
    with pytest.raises(StaleArtifact, match=r"changed world\.digest .*run chapter 00_data again"):
        load_prepared(ctx, 'mcq')


def test_a_leftover_dataset_of_another_source_is_removed(tmp_path):
    ctx = run_context('tiny', tmp_path)
    (tmp_path/'data').mkdir()
    (tmp_path/'data'/'kqa.jsonl').write_text('{"id": 1}\n')            # as if an earlier run had a data_dir
    prepare_data(ctx)
    assert not (tmp_path/'data'/'kqa.jsonl').exists()


# --- the tiny base model: keyed by what it is built from ------------------------------------------------------------

def test_tiny_base_model_follows_its_settings(tmp_path):
    small = run_context('tiny', tmp_path, overrides={'profile.tiny_hidden_size': 32})
    assert load_model_and_tokenizer(small)[0].config.hidden_size == 32
    default = run_context('tiny', tmp_path)
    assert load_model_and_tokenizer(default)[0].config.hidden_size == 64
    unchanged = run_context('tiny', tmp_path, overrides={'eval.top_k': 3})
    assert tiny_base_dir(unchanged) == tiny_base_dir(default) != tiny_base_dir(small)


# --- result rows: keyed by model identity, decoding settings and prompt -------------------------------------------------

@pytest.fixture(scope='module')
def tiny(tok):
    return build_tiny_model(tok, 64).eval(), tok


def run_mcq(model, tok, store, questions=QUESTIONS, **kw):
    kw = {'mode': 'generate', 'style': 'cot', 'samples': 2, 'temperature': 1.0, 'max_new_tokens': 5, 'batch_size': 4,
          'seed': 3, **kw}
    return evaluate_mcq(model, tok, questions, store, 'tiny', 'anatomy', **kw)


@pytest.mark.parametrize('change', [
    {'temperature': 0.7}, {'max_new_tokens': 4}, {'generator_top_k': 5}, {'seed': 4}, {'question': 'a new text'}])
def test_a_result_made_otherwise_is_computed_again(tiny, tmp_path, change, capsys):
    "temperature, max_new_tokens, top_k, the seed and the prompt are in each row's spec: a change recomputes the rows."
    model, tok = tiny
    path = tmp_path/'r.jsonl'
    first = run_mcq(model, tok, ResultStore(path))
    kw = {k: v for k, v in change.items() if k not in ('generator_top_k', 'question')}
    if 'generator_top_k' in change: kw['generator'] = TransformersGenerator(model, tok, top_k=change['generator_top_k'], batch_size=4)
    questions = [{**q, 'question': q['question'] + ' ' + change['question']} for q in QUESTIONS] if 'question' in change else QUESTIONS
    again = run_mcq(model, tok, ResultStore(path), questions, **kw)
    assert len(ResultStore(path).rows) == 2 * len(first)                 # computed again; the old rows stay in the file
    assert {result_key(r) for r in again}.isdisjoint(result_key(r) for r in first)
    named = {'temperature': 'temperature', 'max_new_tokens': 'max_new_tokens', 'generator_top_k': 'top_k', 'seed': 'seed',
             'question': 'prompt'}[next(iter(change))]
    assert f'changed: {named}' in capsys.readouterr().out


def test_a_result_is_reused_when_only_irrelevant_settings_change(tiny, tmp_path):
    model, tok = tiny
    path = tmp_path/'r.jsonl'
    first = run_mcq(model, tok, ResultStore(path))
    assert run_mcq(model, tok, ResultStore(path), batch_size=3) == first                # batches are not in the spec
    greedy = run_mcq(model, tok, ResultStore(path), temperature=0.0, samples=1)
    n = len(ResultStore(path).rows)
    top5 = TransformersGenerator(model, tok, top_k=5, batch_size=4)
    assert run_mcq(model, tok, ResultStore(path), temperature=0.0, samples=1, generator=top5) == greedy   # greedy ignores top_k
    assert len(ResultStore(path).rows) == n


def test_a_retrained_model_under_the_same_name_is_another_model(tiny, tok, tmp_path):
    "Rows are keyed by the model's identity (its weights here), not by the name it is evaluated under."
    model, _ = tiny
    path = tmp_path/'r.jsonl'
    first = run_mcq(model, tok, ResultStore(path), temperature=0.0, samples=1)
    retrained = build_tiny_model(tok, 64, seed=1).eval()
    assert model_identity(retrained) != model_identity(model)
    again = run_mcq(retrained, tok, ResultStore(path), temperature=0.0, samples=1)
    assert [r['setup']['model'] for r in again] != [r['setup']['model'] for r in first]
    # «پاسخ صحیح: گزینه [» 'the correct answer: option [', «پاسخ: » 'answer: '
    loglik = evaluate_mcq(model, tok, QUESTIONS, ResultStore(path), 'tiny', 'anatomy', answer_prefix='پاسخ صحیح: گزینه [')
    other_prefix = evaluate_mcq(model, tok, QUESTIONS, ResultStore(path), 'tiny', 'anatomy', answer_prefix='پاسخ: ')
    assert [r['spec'] for r in loglik] != [r['spec'] for r in other_prefix]      # the answer prefix is in the spec


def test_free_form_answers_follow_their_settings(tiny, tmp_path):
    model, tok = tiny
    qa = [{'id': i, 'question': q['question']} for i, q in enumerate(QUESTIONS)]
    path = tmp_path/'r.jsonl'
    first = generate_answers(model, tok, qa, ResultStore(path), 'tiny', 'mf3qa', max_new_tokens=4, batch_size=4)
    assert generate_answers(model, tok, qa, ResultStore(path), 'tiny', 'mf3qa', max_new_tokens=4, batch_size=2) == first
    generate_answers(model, tok, qa, ResultStore(path), 'tiny', 'mf3qa', max_new_tokens=3, batch_size=4)
    assert len(ResultStore(path).rows) == 2 * len(qa)


# --- the local model's chat cache: keyed by the model's identity -------------------------------------------------------

def test_local_chat_cache_never_replays_another_models_answer(tok, tmp_path):
    msgs = [{'role': 'user', 'content': 'سردرد دارم'}]          # 'I have a headache'
    a = LocalChat(build_tiny_model(tok, 64, seed=0).eval(), tok, tmp_path, name='student')
    first = a.chat(msgs, temperature=0, max_new_tokens=6)
    assert a.chat(msgs, temperature=0, max_new_tokens=6).cached
    b = LocalChat(build_tiny_model(tok, 64, seed=1).eval(), tok, tmp_path, name='student')   # retrained, same name
    other = b.chat(msgs, temperature=0, max_new_tokens=6)
    assert not other.cached and b.cache_name != a.cache_name
    again = LocalChat(build_tiny_model(tok, 64, seed=0).eval(), tok, tmp_path, name='student')
    assert again.chat(msgs, temperature=0, max_new_tokens=6, top_k=3).cached        # greedy: top_k changes nothing
    assert again.chat(msgs, temperature=0, max_new_tokens=6).text == first.text


def test_student_answers_are_keyed_by_the_students_identity(tok, tmp_path):
    "The RLAIF student's first answers (student_answers.jsonl) are not reused for a retrained student of the same name."
    from gaokerena.config import load_settings
    from gaokerena.rounds import student_answers
    s = load_settings('tiny', overrides={'rlaif.student_max_new_tokens': 4})
    store = ResultStore(tmp_path/'student_answers.jsonl')
    one = LocalChat(build_tiny_model(tok, 64, seed=0).eval(), tok, name='tiny')
    first = student_answers(QUESTIONS[:3], one, store, s)
    assert student_answers(QUESTIONS[:3], one, ResultStore(store.path), load_settings('tiny', overrides={
        'rlaif.student_max_new_tokens': 4, 'rlaif.teacher_max_tokens': 7})) == [{**r, 'call': {**r['call'], 'cached': True, 'usd': 0.0}} for r in first]
    two = LocalChat(build_tiny_model(tok, 64, seed=1).eval(), tok, name='tiny')
    student_answers(QUESTIONS[:3], two, ResultStore(store.path), s)
    assert len(ResultStore(store.path).rows) == 6
