"""vLLM as the kit drives it (adapters unmerged, the authors' sampling, its own process), against a stand-in `vllm` package (tests/vllm_standin).

vLLM needs CUDA and cannot be installed here, so the real engine is replaced at the boundary we do not own: the
stand-in records the engine's arguments and every batch it receives. What only a GPU can check is listed in the
"GPU checklist" of bench/README.md."""
import json, os, tempfile
from pathlib import Path
import pytest
from conftest import ROOT
from gaokerena.config import run_context
from gaokerena.rows import load_sample
from gaokerena.evalrun import evaluate_mcq
from gaokerena.generation import VLLMGenerator
from gaokerena.results import ResultStore
from gaokerena.llm import VLLMEngine, decoding_kwargs, vllm_sampling_kwargs
from gaokerena.models import ModelRecipe, build_tiny_model, build_tokenizer, sample_texts, tiny_model_and_tokenizer


@pytest.fixture
def standin(monkeypatch, tmp_path):
    "The stand-in `vllm` importable (in this process and in the engine's spawned one); returns a reader of its log."
    monkeypatch.syspath_prepend(str(ROOT/'tests'/'vllm_standin'))
    log = tmp_path/'vllm.log'
    monkeypatch.setenv('GAOKERENA_VLLM_LOG', str(log))
    return lambda: [json.loads(l) for l in log.read_text(encoding='utf-8').splitlines()] if log.exists() else []


@pytest.fixture(scope='module')
def adapters(tmp_path_factory):
    "A tiny run folder with its base model, and three LoRA adapters of the papers' ranks (8, 2, 16) with random updates."
    from peft import LoraConfig, get_peft_model
    run = tmp_path_factory.mktemp('vllm-run')
    ctx = run_context('tiny', run)
    model, _ = tiny_model_and_tokenizer(ctx)
    out = []
    for i, r in enumerate((8, 2, 16)):
        folder = run/'adapters'/f'a{i}'
        get_peft_model(model.__class__.from_pretrained(model.name_or_path),
                       LoraConfig(r=r, lora_alpha=2 * r, target_modules='all-linear', init_lora_weights=False)).save_pretrained(folder)
        out.append(folder)
    return run, out


def test_adapters_are_served_unmerged_from_a_local_folder_deleted_after_use(standin, adapters):
    run, (pre, ins, dpo) = adapters
    ctx = run_context('tiny', run)
    recipe = ModelRecipe('tiny', merged=(pre, ins), adapters=(dpo,), name='tiny+phase1+dpo')
    with VLLMGenerator(ctx, recipe) as gen:
        lora_dir, pid = Path(gen.lora_dir), gen.engine.process.pid
        assert gen.batch_size is None
        texts = gen(['سلام', 'فشار خون بالا'], 8, 1.0, seed=2)      # 'hello', 'high blood pressure'
        assert lora_dir.is_dir() and run not in lora_dir.parents and Path(tempfile.gettempdir()) in lora_dir.parents
    init, batch = standin()
    kw = init['kwargs']
    assert kw['model'].startswith(str(run/'tiny-base')) and kw['enable_lora'] and kw['max_lora_rank'] == 32   # rank 8 + 2 + 16
    assert kw['generation_config'] == 'vllm' and 'quantization' not in kw and init['pid'] == pid != os.getpid()
    assert kw['tensor_parallel_size'] == 1
    assert batch['lora']['rank'] == 26 and batch['lora']['path'] == str(lora_dir) and texts[0].startswith('پاسخ صحیح گزینه [')
    assert not lora_dir.exists(), 'the served adapter is deleted with the generator'
    with pytest.raises(ProcessLookupError): os.kill(pid, 0)      # the engine's process ended: its GPU memory with it


def test_a_benchmark_goes_to_the_engine_at_once_with_the_transformers_parameters(standin, adapters, tmp_path):
    run, _ = adapters
    ctx = run_context('tiny', run, overrides={'eval.top_k': 40, 'eval.top_p': 0.95})
    questions = load_sample('mcq')[:10]
    with VLLMGenerator(ctx, ModelRecipe('tiny', name='tiny')) as gen:
        rows = evaluate_mcq(None, None, questions, ResultStore(tmp_path/'r.jsonl'), 'tiny', 'anatomy', mode='generate',
                            style='cot', samples=2, temperature=1.0, max_new_tokens=9, batch_size=4, seed=5, generator=gen)
    batches = [e for e in standin() if e['event'] == 'generate']
    assert [b['n'] for b in batches] == [20], 'all 10 questions x 2 samples in one request batch, not 4 at a time'
    assert {r['answer'] for r in rows} <= set('ABCD') and batches[0]['lora'] is None
    hf = decoding_kwargs(1.0, 40, 0.95)
    for i, p in enumerate(batches[0]['params']):
        assert p == vllm_sampling_kwargs(1.0, 40, 0.95, 9, 5 * 100_003 + i)
        assert (p['temperature'], p['top_k'], p['top_p'], p['repetition_penalty']) == \
               (hf['temperature'], hf['top_k'], hf['top_p'], hf['repetition_penalty'])   # what transformers is asked for
    assert {r['setup']['top_k'] for r in rows} == {40}


def test_one_engine_at_a_time(standin, adapters):
    run, _ = adapters
    ctx = run_context('tiny', run)
    first = VLLMGenerator(ctx, ModelRecipe('tiny'))
    try:
        with pytest.raises(RuntimeError, match='already running'): VLLMGenerator(ctx, ModelRecipe('tiny'))
    finally: first.close()
    with VLLMGenerator(ctx, ModelRecipe('tiny')) as second: assert second(['سلام'], 3)
    assert [e['event'] for e in standin()] == ['init', 'init', 'generate']


def test_the_4bit_profile_serves_the_adapter_on_quantised_weights(standin, adapters):
    run, (pre, _, _) = adapters
    ctx = run_context('tiny', run, overrides={'profile.load_in_4bit': True})
    with VLLMGenerator(ctx, ModelRecipe('tiny', adapters=(pre,))): pass
    kw = standin()[0]['kwargs']
    assert kw['quantization'] == 'bitsandbytes' and kw['enable_lora'] and kw['max_lora_rank'] == 8


def test_an_engine_error_reaches_the_caller_and_frees_the_slot(standin, monkeypatch):
    monkeypatch.delenv('GAOKERENA_VLLM_LOG')                 # the stand-in then fails inside the engine's process
    with pytest.raises(RuntimeError, match='vLLM failed in its process'): VLLMEngine({'model': 'x'})
    monkeypatch.setenv('GAOKERENA_VLLM_LOG', os.devnull)
    VLLMEngine({'model': 'x'}).close()                       # the one-engine slot was released


def test_loaded_models_sees_a_transformers_model_until_it_is_released():
    "What VLLMGenerator checks before starting (on 'cuda'): here on the CPU, the same search."
    from gaokerena.models import loaded_models, release_memory
    tok = build_tokenizer(sample_texts()[:100], 500)
    release_memory()                        # models other tests left unreachable are collected first
    before = len(loaded_models('cpu'))
    model = build_tiny_model(tok, 16)
    assert len(loaded_models('cpu')) > before
    del model
    release_memory()
    assert len(loaded_models('cpu')) == before
