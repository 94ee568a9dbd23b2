"Phase 1 (gaokerena.sft): packing, answer-only labels, LoRA coverage, settings reaching the trainer, resume, merging."
import json, math
from pathlib import Path
import pytest
import torch
from peft import PeftModel
from peft.tuners.lora import LoraLayer
from transformers import AutoModelForCausalLM, TrainerCallback
import transformers.training_args
from gaokerena.config import load_settings, run_context, SettingsError
from gaokerena.sources import load_prepared
from gaokerena.sft import (chat_dataset, check_pad_token, corpus_share, linear_module_names, pack_blocks, padding_share,
                           tokenize_documents)
from gaokerena.stages import (instruct_config, load_for_training, lora_config, make_trainer, phase1_specs, planned_steps,
                              planned_tokens, pretrain_config, save_merged, stage_spec, train_stage, unsloth_load_kwargs,
                              unsloth_lora_kwargs, use_unsloth)
from gaokerena.stores import fingerprint, keyed_folder

GPU_PROFILES = ('colab-l4', 'colab-a100', 'h100')
COHERE_LINEAR = ['down_proj', 'gate_proj', 'k_proj', 'o_proj', 'q_proj', 'up_proj', 'v_proj']


# these tests check the trainers' mechanics, not learning (tests/test_pipeline.py asserts the effects): the tiny model on the
# bundled sample, in short blocks and small batches, every step logged
UNIT = {'profile.data_source': 'sample', 'pretrain.max_length': 128, 'pretrain.per_device_train_batch_size': 4,
        'pretrain.logging_steps': 1, 'instruct.max_length': 384, 'instruct.per_device_train_batch_size': 4, 'instruct.logging_steps': 1}


@pytest.fixture(scope='module')
def base_dir(tmp_path_factory):
    "A run folder holding the tiny base model (built once for the module)."
    d = tmp_path_factory.mktemp('sft-base')
    load_for_training(run_context('tiny', d, overrides=UNIT))
    return d


def tiny(base_dir, **overrides):
    "(ctx, model, tokenizer): a fresh copy of the tiny base model with the tiny profile, UNIT and `overrides`."
    ctx = run_context('tiny', base_dir, overrides={**UNIT, **overrides})
    return (ctx, *load_for_training(ctx))


def corpus_blocks(ctx, tokenizer):
    s = ctx.settings
    return pack_blocks(tokenize_documents(load_prepared(ctx, 'corpus'), tokenizer), s.pretrain.max_length)


def pretrain_trainer(base_dir, root, callbacks=(), **overrides):
    "A stage-1 trainer whose folder is `root`/<fingerprint of the stage's spec for these settings>."
    ctx, model, tok = tiny(base_dir, **overrides)
    s = ctx.settings
    out = keyed_folder(root, phase1_specs(ctx)[0])
    return make_trainer(model, tok, corpus_blocks(ctx, tok), pretrain_config(s, out), s.pretrain, s, callbacks)


def instruct_trainer(base_dir, root, **overrides):
    ctx, model, tok = tiny(base_dir, **overrides)
    s = ctx.settings
    out = keyed_folder(root, phase1_specs(ctx)[1])
    return make_trainer(model, tok, chat_dataset(load_prepared(ctx, 'qa_train')), instruct_config(s, out), s.instruct, s)


def folder(trainer) -> Path: return Path(trainer.args.output_dir)


# --- stage 1: packing --------------------------------------------------------------------------------------------

def test_packed_batches_have_no_padding(base_dir, tmp_path):
    "The batches the stage-1 trainer really feeds the model: full blocks, no pad token, every token trained."
    trainer = pretrain_trainer(base_dir, tmp_path)
    pad, n = trainer.processing_class.pad_token_id, 0
    for batch in trainer.get_train_dataloader():
        assert batch['input_ids'].shape[1] == 128
        assert not (batch['input_ids'] == pad).any()
        assert batch['attention_mask'].all()
        assert torch.equal(batch['labels'], batch['input_ids'])
        n += batch['input_ids'].shape[0]
    assert n == len(trainer.train_dataset) > 100
    assert padding_share(trainer.get_train_dataloader()) == 0


def test_pack_blocks_loses_only_the_tail_beyond_1000_documents():
    "trl's own wrapped packing cuts every map batch of 1000 documents; ours packs the whole stream at once."
    from gaokerena.models import AYA_TOKENS, build_tokenizer
    texts = [f'سند {i} ' + 'بیمار دارو درمان ' * (3 + i % 17) for i in range(2500)]
    tok = build_tokenizer(texts, 400)
    docs = tokenize_documents([{'text': t} for t in texts], tok)
    stream = [t for ids in docs['input_ids'] for t in ids]
    blocks = pack_blocks(docs, 64)
    assert {len(ids) for ids in blocks['input_ids']} == {64}
    assert [t for ids in blocks['input_ids'] for t in ids] == stream[:64 * len(blocks)]
    assert len(stream) - 64 * len(blocks) < 64
    assert docs[0]['input_ids'][0] == tok.bos_token_id and docs[0]['input_ids'][-1] == tok.convert_tokens_to_ids(AYA_TOKENS['eos_token'])


def test_corpus_share_is_seeded_and_sized():
    rows = [{'id': i, 'text': str(i)} for i in range(100)]
    a, b = corpus_share(rows, 0.6, 42), corpus_share(rows, 0.6, 42)
    assert a == b and len(a) == 60 and [r['id'] for r in a] == sorted(r['id'] for r in a)
    assert a != rows[:60] and corpus_share(rows, 0.6, 1) != a
    assert corpus_share(rows, 1.0, 0) == rows and len(corpus_share(rows[:1], 0.1, 0)) == 1


# --- stage 2: answer-only labels ---------------------------------------------------------------------------------

def test_answer_only_labels_on_collated_batches(base_dir, tmp_path):
    "Prompt ignored (its EOS too), the answer and its EOS trained, padding ignored and not attended."
    trainer = instruct_trainer(base_dir, tmp_path)
    tok = trainer.processing_class
    eos, pad, chatbot = tok.eos_token_id, tok.pad_token_id, tok.convert_tokens_to_ids('<|CHATBOT_TOKEN|>')
    assert pad != eos
    answers = {r['answer'].strip() for r in load_prepared(run_context('tiny', base_dir, overrides=UNIT), 'qa_train')}
    rows = padded = 0
    for batch in trainer.get_train_dataloader():
        for ids, labels, mask in zip(batch['input_ids'].tolist(), batch['labels'].tolist(), batch['attention_mask'].tolist()):
            rows += 1
            real = [i for i, m in enumerate(mask) if m]
            assert real == list(range(len(real))), 'training batches are padded on the right'
            for i in range(len(real), len(ids)):
                assert ids[i] == pad and labels[i] == -100
                padded += 1
            trained = [i for i, l in enumerate(labels) if l != -100]
            first, last = trained[0], trained[-1]
            assert trained == list(range(first, last + 1)) and last == len(real) - 1
            assert ids[first - 1] == chatbot, 'the answer starts right after <|CHATBOT_TOKEN|>'
            assert eos in ids[:first], "the question's end-of-turn is part of the ignored prompt"
            assert labels[last] == ids[last] == eos, "the answer's EOS keeps its label"
            assert all(labels[i] == ids[i] for i in trained)
            assert tok.decode(ids[first:last]) in answers
    assert rows == len(trainer.train_dataset) and padded > 0


def test_pad_token_must_not_be_eos(base_dir, tmp_path):
    ctx, model, tok = tiny(base_dir)
    tok.pad_token = tok.eos_token
    with pytest.raises(ValueError, match='never learn to stop'): check_pad_token(tok)
    with pytest.raises(ValueError, match='differ from EOS'):
        make_trainer(model, tok, chat_dataset(load_prepared(ctx, 'qa_train')), instruct_config(ctx.settings, tmp_path),
                     ctx.settings.instruct, ctx.settings)


# --- LoRA and settings -------------------------------------------------------------------------------------------

def test_lora_reaches_every_linear_layer(base_dir, tmp_path):
    ctx, model, _ = tiny(base_dir)
    head = model.get_output_embeddings()
    linear = {n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and m is not head}
    assert len(linear) == 2 * 7 and linear_module_names(model) == COHERE_LINEAR
    trainer = pretrain_trainer(base_dir, tmp_path)
    adapted = {n.removeprefix('base_model.model.') for n, m in trainer.model.named_modules() if isinstance(m, LoraLayer)}
    assert adapted == linear
    assert not isinstance(trainer.model.get_output_embeddings(), LoraLayer)
    trainable = {n for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert trainable and {n for n in trainable if 'lora_' not in n} == {'base_model.model.model.embed_tokens.modules_to_save.default.weight'}, \
        "LoRA weights, and the tiny profile's token embeddings in full (pretrain.modules_to_save)"


@pytest.fixture
def bf16_capable(monkeypatch):
    "Let TrainingArguments accept bf16 on this CPU machine (the hardware check is the only thing bypassed)."
    monkeypatch.setattr(transformers.training_args, 'is_torch_bf16_gpu_available', lambda: True)


@pytest.mark.parametrize('profile', GPU_PROFILES)
def test_settings_reach_the_trainer_exactly(profile, bf16_capable, tmp_path):
    s = load_settings(profile)
    for stage, cfg in [(s.pretrain, pretrain_config(s, tmp_path)), (s.instruct, instruct_config(s, tmp_path))]:
        got = dict(learning_rate=cfg.learning_rate, per_device_train_batch_size=cfg.per_device_train_batch_size,
                   gradient_accumulation_steps=cfg.gradient_accumulation_steps, max_grad_norm=cfg.max_grad_norm,
                   warmup_ratio=cfg.warmup_steps, weight_decay=cfg.weight_decay, max_length=cfg.max_length,
                   num_train_epochs=cfg.num_train_epochs, max_steps=cfg.max_steps,
                   lr_scheduler_type=str(cfg.lr_scheduler_type.value), optim=str(cfg.optim.value),
                   logging_steps=cfg.logging_steps, save_steps=cfg.save_steps, seed=cfg.seed)
        assert got == {k: getattr(stage, k) for k in got}
        assert (cfg.bf16, cfg.use_cpu, cfg.gradient_checkpointing) == (True, False, True)
        assert cfg.get_warmup_steps(1000) == 30
        assert cfg.output_dir == str(tmp_path)
    # the paper's table, literally
    pre, ins = pretrain_config(s, tmp_path), instruct_config(s, tmp_path)
    for cfg in (pre, ins):
        assert (cfg.per_device_train_batch_size, cfg.gradient_accumulation_steps, cfg.learning_rate, cfg.max_grad_norm,
                cfg.warmup_steps, cfg.max_length, cfg.num_train_epochs) == (2, 16, 5e-4, 0.3, 0.03, 1024, 1)
    assert (pre.weight_decay, ins.weight_decay) == (0.1, 0.5)
    assert ins.completion_only_loss is True and not pre.packing and not ins.packing
    for stage, numbers in [(s.pretrain, (8, 16, 0.05)), (s.instruct, (2, 2, 0.4))]:
        lc = lora_config(stage)
        assert (lc.r, lc.lora_alpha, lc.lora_dropout, lc.target_modules) == (*numbers, 'all-linear')
        uk = unsloth_lora_kwargs(stage, s, COHERE_LINEAR)
        assert (uk['r'], uk['lora_alpha'], uk['lora_dropout'], uk['target_modules']) == (*numbers, COHERE_LINEAR)
        assert uk['use_gradient_checkpointing'] == 'unsloth' and uk['random_state'] == stage.seed
    assert s.pretrain.corpus_fraction == 0.6
    lk = unsloth_load_kwargs(s)
    assert lk == dict(model_name='CohereLabs/aya-expanse-8b', max_seq_length=1024, dtype=torch.bfloat16,
                      load_in_4bit=profile == 'colab-l4')


def test_unsloth_switch():
    assert use_unsloth(load_settings('tiny')) is False
    if not torch.cuda.is_available():
        assert use_unsloth(load_settings('colab-a100')) is False      # auto, and no GPU here
        with pytest.raises(RuntimeError, match='unsloth'): use_unsloth(load_settings('tiny', {'profile.use_unsloth': 'true'}))
    with pytest.raises(SettingsError, match='use_unsloth'): use_unsloth(load_settings('tiny', {'profile.use_unsloth': 'yes please'}))


def test_planned_steps_and_tokens_match_the_trainer(base_dir, tmp_path):
    "Epoch-based: the trainer takes exactly `planned_steps`; running the stage again adds no step."
    trainer = pretrain_trainer(base_dir, tmp_path, **{'pretrain.max_steps': -1, 'pretrain.gradient_accumulation_steps': 3,
                                                      'pretrain.save_steps': 100})
    n = len(trainer.train_dataset)
    planned = planned_steps(n, trainer.args)
    assert planned == math.ceil(math.ceil(n / 4) / 3)
    result = train_stage(trainer)
    assert trainer.state.max_steps == trainer.state.global_step == planned == result.facts()['steps']
    assert result.tokens == planned_tokens([128] * n, trainer.args) == n * 128
    again = pretrain_trainer(base_dir, tmp_path, **{'pretrain.max_steps': -1, 'pretrain.gradient_accumulation_steps': 3})
    assert folder(again) == folder(trainer), 'save_steps is not in the spec: the same folder'
    again = train_stage(again)
    assert (again.resumed_from, again.tokens, again.train_s) == (planned, 0, 0.0)
    assert json.loads((folder(trainer)/f'checkpoint-{planned}'/'trainer_state.json').read_text())['global_step'] == planned


# --- training, resume, merge -------------------------------------------------------------------------------------

RESUME = {'pretrain.max_steps': 12, 'pretrain.save_steps': 4}


@pytest.fixture(scope='module')
def uninterrupted(base_dir, tmp_path_factory):
    "A 12-step tiny stage-1 run that nothing interrupts: (trainer, result, output folder)."
    out = tmp_path_factory.mktemp('uninterrupted')
    trainer = pretrain_trainer(base_dir, out, **RESUME)
    return trainer, train_stage(trainer), folder(trainer)


class StopAfter(TrainerCallback):
    "Raise as if the machine went away after optimizer step `n`."
    def __init__(self, n): self.n = n
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.n: raise KeyboardInterrupt(f'interrupted after step {self.n}')


def test_loss_falls_on_the_tiny_run(uninterrupted):
    _, result, _ = uninterrupted
    losses = [l for _, l in result.losses]
    assert len(losses) == 12 and min(losses[-3:]) < losses[0]
    assert result.tokens == 12 * 4 * 128 and result.train_s > 0


def test_interrupted_run_resumes_from_the_saved_step(base_dir, tmp_path, uninterrupted):
    ref_trainer, ref, ref_out = uninterrupted
    with pytest.raises(KeyboardInterrupt): train_stage(pretrain_trainer(base_dir, tmp_path, [StopAfter(6)], **RESUME))
    trainer = pretrain_trainer(base_dir, tmp_path, **RESUME)
    out = folder(trainer)
    assert sorted(p.name for p in out.glob('checkpoint-*')) == ['checkpoint-4']
    result = train_stage(trainer)
    assert result.resumed_from == 4 and trainer.state.global_step == 12
    assert result.tokens == 8 * 4 * 128, 'this session trained steps 5-12 only'
    steps = [s for s, _ in result.losses]
    assert steps == list(range(1, 13)), 'the log continues the saved one: every step once'
    assert [l for _, l in result.losses] == pytest.approx([l for _, l in ref.losses], rel=1e-5)
    mine = torch.load(out/'checkpoint-12'/'optimizer.pt', weights_only=True)['state']
    theirs = torch.load(ref_out/'checkpoint-12'/'optimizer.pt', weights_only=True)['state']
    assert mine.keys() == theirs.keys()
    for k in mine:
        assert mine[k]['step'] == theirs[k]['step'] == 12
        assert torch.allclose(mine[k]['exp_avg'], theirs[k]['exp_avg'], rtol=1e-4, atol=1e-9)
        assert torch.allclose(mine[k]['exp_avg_sq'], theirs[k]['exp_avg_sq'], rtol=1e-4, atol=1e-12)
    # a third run finds the final checkpoint and trains nothing (transformers 5.17 would add a 13th step)
    again = pretrain_trainer(base_dir, tmp_path, **RESUME)
    final = train_stage(again)
    assert (final.resumed_from, final.tokens, again.state.global_step) == (12, 0, 0)
    assert not (out/'checkpoint-13').exists()
    sd = lambda m: {k: v for k, v in m.state_dict().items() if 'lora_' in k}
    for k, v in sd(final.model).items(): assert torch.equal(v, sd(result.model)[k])


def test_saved_reloaded_and_merged_adapters_give_the_same_logits(base_dir, uninterrupted, tmp_path):
    _, result, out = uninterrupted
    ctx, base, tok = tiny(base_dir)
    x = tok(['سردرد و تب دارم؛ چه کنم؟', 'فشار خون بالا'], return_tensors='pt', padding=True)
    with torch.no_grad():
        base_logits = base(**x).logits
        trained = result.model.eval()(**x).logits
        reloaded = PeftModel.from_pretrained(base, str(out/'adapter')).eval()
        assert torch.allclose(reloaded(**x).logits, trained, atol=1e-5)
        merged = reloaded.merge_and_unload()
        assert not any(isinstance(m, LoraLayer) for m in merged.modules())
        assert torch.allclose(merged(**x).logits, trained, atol=1e-5)
        assert (trained - base_logits).abs().max() > 1e-4, 'the trained adapter changes the logits'
        path = save_merged(merged, tok, tmp_path/'merged')
        assert torch.allclose(AutoModelForCausalLM.from_pretrained(path).eval()(**x).logits, trained, atol=1e-5)
    assert not (tmp_path/'merged.tmp').exists()


# --- no stale reuse: a stage trains in the folder of its spec ------------------------------------------------------------

def test_a_stage_trains_only_in_a_folder_that_records_its_spec(base_dir, tmp_path):
    ctx, model, tok = tiny(base_dir)
    s = ctx.settings
    trainer = make_trainer(model, tok, corpus_blocks(ctx, tok), pretrain_config(s, tmp_path/'plain'), s.pretrain, s)
    with pytest.raises(ValueError, match='records its spec'): train_stage(trainer)


def test_stage_specs_change_with_what_the_adapter_is_made_from(base_dir):
    specs = lambda **o: phase1_specs(run_context('tiny', base_dir, overrides=o))
    pre, ins = specs()
    assert specs(**{'pretrain.logging_steps': 5, 'pretrain.save_steps': 3, 'instruct.save_merged': True, 'eval.batch_size': 2,
                    'dpo.beta': 5}) == (pre, ins)
    lr_pre, lr_ins = specs(**{'pretrain.learning_rate': 1e-4})
    assert lr_pre != pre and lr_ins != ins, 'stage 2 starts from stage 1: a new stage 1 is a new stage 2'
    assert specs(**{'instruct.lora_r': 4})[0] == pre and specs(**{'instruct.lora_r': 4})[1] != ins
    assert specs(**{'profile.tiny_hidden_size': 32})[0] != pre                # another base model
    assert stage_spec(run_context('tiny', base_dir).settings.pretrain, run_context('tiny', base_dir).settings, {}, 'x')['data'] == 'x'


def test_a_relevant_change_retrains_beside_the_old_adapter(base_dir, tmp_path):
    over = {'pretrain.max_steps': 3, 'pretrain.save_steps': 3}
    first = pretrain_trainer(base_dir, tmp_path, **over)
    train_stage(first)
    other = pretrain_trainer(base_dir, tmp_path, **over, **{'pretrain.learning_rate': 1e-3})
    b = train_stage(other)
    assert folder(other) != folder(first) and (b.resumed_from, b.tokens > 0, b.train_s > 0) == (0, True, True)
    assert (folder(first)/'adapter'/'adapter_model.safetensors').exists(), 'the old adapter is kept'
    same = pretrain_trainer(base_dir, tmp_path, **over, **{'pretrain.logging_steps': 2})
    c = train_stage(same)
    assert folder(same) == folder(first) and (c.resumed_from, c.tokens) == (3, 0)
    weights = lambda f: (f/'adapter'/'adapter_model.safetensors').read_bytes()
    assert weights(folder(first)) != weights(folder(other))


def test_later_chapters_load_the_phase1_adapters_of_their_settings(tiny_run):
    "The Phase-1 model is the one trained with these settings; another learning rate finds no adapter, an unrelated setting does."
    from gaokerena.stages import load_phase1_model, phase1_recipe
    run_dir, _ = tiny_run
    assert phase1_recipe(run_context('tiny', run_dir, overrides={'eval.batch_size': 3, 'dpo.beta': 5})).name == 'tiny+phase1'
    other = run_context('tiny', run_dir, overrides={'instruct.learning_rate': 1e-3})
    model, _, name = load_phase1_model(other)
    assert name == 'tiny' and not hasattr(model, 'peft_config')


# --- the core objectives by hand: LoRA, the label mask --------------------------------------------------------------

@pytest.mark.parametrize('bias, r, alpha', [(True, 4, 8), (False, 2, 2), (True, 8, 16)])
def test_lora_by_hand_equals_peft_on_the_same_weights(bias, r, alpha):
    "LoRALinear with peft's A and B (B trained away from zero) gives peft's outputs, trains as many numbers, and merges exactly."
    import copy
    from peft import LoraConfig, get_peft_model
    from gaokerena.sft import LoRALinear
    torch.manual_seed(1)
    linear = torch.nn.Linear(24, 40, bias=bias)
    wrapped = get_peft_model(torch.nn.Sequential(copy.deepcopy(linear)), LoraConfig(r=r, lora_alpha=alpha, target_modules=['0'])).eval()
    theirs = wrapped.base_model.model[0]
    ours = LoRALinear(linear, r, alpha)
    x = torch.randn(7, 24)
    assert torch.equal(ours(x), linear(x)), 'B starts at zero: the base model exactly'
    torch.nn.init.normal_(theirs.lora_B['default'].weight)
    ours.A.data.copy_(theirs.lora_A['default'].weight); ours.B.data.copy_(theirs.lora_B['default'].weight)
    with torch.no_grad():
        assert not torch.allclose(wrapped(x), linear(x), atol=1e-3), 'the update must change the output for the check to mean anything'
        assert torch.allclose(ours(x), wrapped(x), atol=1e-6)
        assert torch.allclose(ours.merged()(x), wrapped.merge_and_unload()(x), atol=1e-5)
    assert [n for n, p in ours.named_parameters() if p.requires_grad] == ['A', 'B']
    assert sum(p.numel() for p in ours.parameters() if p.requires_grad) == r * (24 + 40)


def test_chat_labels_by_hand_equal_the_trainers_rows(base_dir, tmp_path):
    "chat_labels builds every training row's ids and labels exactly as trl's SFTTrainer does (rows within max_length)."
    from gaokerena.sft import chat_labels, label_mask_html
    trainer = instruct_trainer(base_dir, tmp_path)
    tok = trainer.processing_class
    rows = load_prepared(run_context('tiny', base_dir, overrides=UNIT), 'qa_train')    # the rows the trainer read
    checked = 0
    for r, row in zip(rows, trainer.train_dataset):
        ids, labels = chat_labels(tok, r['question'], r['answer'])
        n = len(row['input_ids'])
        assert (ids[:n], labels[:n]) == (row['input_ids'], row['labels'])
        checked += 1
    assert checked == len(trainer.train_dataset) == len(rows)
    ids, labels = chat_labels(tok, 'سرم درد می‌کند.', 'استراحت کنید.')   # "I have a headache." / "Rest."
    page = label_mask_html(tok, ids, labels)
    assert page.count('<span') == len(ids) and page.count('title="trained"') == sum(l != -100 for l in labels) > 0
    assert labels[-1] == tok.eos_token_id and '&lt;|END_OF_TURN_TOKEN|&gt;' in page.rsplit('title="trained"', 1)[1]


# --- 4-bit profiles: stage 2 on top of the frozen stage-1 adapter, nothing merged ------------------------------------

@pytest.mark.parametrize('profile', ['colab-l4', 'colab-t4'])
def test_a_4bit_profile_plans_chapter_01_without_refusing(profile, tmp_path):
    "On a 4-bit profile chapter 01 stacks stage 2 on the frozen stage-1 adapter: it gets past the plan to the hub's data (offline here)."
    from gaokerena.rows import DataError
    from gaokerena.train import train_sft
    ctx = run_context(profile, run_dir=tmp_path)
    with pytest.raises(DataError, match='OfflineModeIsEnabled'): train_sft(ctx)    # main: QuantizedMergeError before any work
    from gaokerena.stages import stacks_stage1
    assert stacks_stage1(ctx.settings)
    assert not any(stacks_stage1(run_context(p, run_dir=tmp_path).settings) for p in ('colab-a100', 'h100', 'tiny'))


# the tiny model ignores load_in_4bit (no bitsandbytes on a CPU): switching it on takes the 4-bit profiles' stacked path on the
# tiny model's float weights; stacking takes plain LoRA, so the embeddings are not trained in full here
STACK = {**UNIT, 'profile.load_in_4bit': True, 'pretrain.modules_to_save': '', 'instruct.modules_to_save': '', 'pretrain.lora_dropout': 0.1,
         'pretrain.max_steps': 4, 'pretrain.save_steps': 4, 'instruct.max_steps': 4, 'instruct.save_steps': 2}


def lora_weights(model, adapter: str) -> dict:
    "An adapter's LoRA weights in `model`, named as its saved file names them."
    return {n.replace(f'.{adapter}.', '.'): p.detach().clone() for n, p in model.named_parameters() if f'.lora_A.{adapter}.' in n
            or f'.lora_B.{adapter}.' in n}


@pytest.fixture(scope='module')
def stacked(tmp_path_factory):
    "A stacked Phase 1 on the tiny model: stage 1, then stage 2 interrupted after step 3 and resumed on a freshly loaded stacked model."
    from types import SimpleNamespace
    from safetensors.torch import load_file
    from gaokerena.stages import load_stage1_model, phase1_datasets, phase1_folders, stage2_model
    ctx = run_context('tiny', tmp_path_factory.mktemp('stacked'), overrides=STACK)
    s, (model, tok) = ctx.settings, load_for_training(ctx)
    pre_dir, ins_dir = phase1_folders(ctx)
    blocks, qa = phase1_datasets(ctx, tok)
    pre = train_stage(make_trainer(model, tok, blocks, pretrain_config(s, pre_dir), s.pretrain, s))
    stage1_file = pre_dir/'adapter'/'adapter_model.safetensors'
    stage1_bytes, stage1 = stage1_file.read_bytes(), load_file(stage1_file)
    first = stage2_model(pre.model, pre_dir/'adapter', s)
    trainable = sorted(n for n, p in first.named_parameters() if p.requires_grad)
    frozen_before = {n: p.detach().clone() for n, p in first.named_parameters() if not p.requires_grad}
    with pytest.raises(KeyboardInterrupt): train_stage(make_trainer(first, tok, qa, instruct_config(s, ins_dir), s.instruct, s, [StopAfter(3)]))
    frozen_after = {n: p.detach().clone() for n, p in first.named_parameters() if not p.requires_grad}
    model, _ = load_stage1_model(ctx)
    trainer = make_trainer(model, tok, qa, instruct_config(s, ins_dir), s.instruct, s)
    result = train_stage(trainer)
    return SimpleNamespace(ctx=ctx, tok=tok, pre_dir=pre_dir, ins_dir=ins_dir, stage1=stage1, stage1_bytes=stage1_bytes,
                           trainable=trainable, frozen_before=frozen_before, frozen_after=frozen_after, trainer=trainer, result=result)


def test_stacked_stage2_trains_only_its_adapter_and_leaves_stage1_byte_identical(stacked):
    "4-bit profiles' stage 2: the frozen stage-1 adapter and the base never change; only the new adapter trains, saves and resumes."
    from safetensors.torch import load_file
    from gaokerena.stages import STAGE1, stacks_stage1
    model, r = stacked.result.model, stacked.result
    assert stacks_stage1(stacked.ctx.settings) and model.active_adapters == ['default', STAGE1]
    assert stacked.trainable and all('.default.' in n and 'lora_' in n for n in stacked.trainable)
    assert sorted(n for n, p in model.named_parameters() if p.requires_grad) == stacked.trainable, 'after resuming too'
    assert all(torch.equal(v, stacked.frozen_after[k]) for k, v in stacked.frozen_before.items()), 'stage 1 and the base did not move'
    assert (stacked.pre_dir/'adapter'/'adapter_model.safetensors').read_bytes() == stacked.stage1_bytes
    layers = [m for m in model.modules() if isinstance(m, LoraLayer)]
    assert layers and all(isinstance(m.lora_dropout[STAGE1], torch.nn.Identity) for m in layers), \
        'stage 1 reads its input whole while stage 2 trains, as the merged weights would (its own dropout was 0.1)'
    mine = lora_weights(model, STAGE1)
    assert mine.keys() == stacked.stage1.keys() and all(torch.equal(v, stacked.stage1[k]) for k, v in mine.items())
    assert (r.resumed_from, stacked.trainer.state.global_step, [s for s, _ in r.losses]) == (2, 4, [1, 2, 3, 4])
    new = lora_weights(model, 'default')
    assert max(v.abs().max() for k, v in new.items() if 'lora_B' in k) > 0, 'stage 2 trained (its B starts at zero)'
    saved = load_file(stacked.ins_dir/'adapter'/'adapter_model.safetensors')
    assert saved.keys() == new.keys() and all(torch.equal(v, new[k]) for k, v in saved.items())
    folders = [stacked.ins_dir/'adapter', *stacked.ins_dir.glob('checkpoint-*')]
    assert len(folders) == 3 and not any(p.is_dir() for f in folders for p in f.iterdir()), 'no copy of stage 1 saved beside stage 2'


def test_the_phase1_recipe_is_the_model_stacked_stage2_trained(stacked):
    "The Phase-1 model later chapters load (base + both adapters as one LoRA on top, nothing merged) gives the stacked model's logits."
    from gaokerena.models import load_recipe
    from gaokerena.stages import phase1_recipe
    recipe = phase1_recipe(stacked.ctx)
    assert recipe.merged == () and recipe.adapters == (stacked.pre_dir/'adapter', stacked.ins_dir/'adapter')
    combined, tok = load_recipe(stacked.ctx, recipe)
    x = tok(['سردرد و تب دارم؛ چه کنم؟', 'فشار خون بالا'], return_tensors='pt', padding=True)   # "I have a headache and fever; what should I do?", "high blood pressure"
    with torch.no_grad():
        trained = stacked.result.model.eval()(**x).logits
        assert torch.allclose(combined(**x).logits, trained, atol=1e-5)
        with stacked.result.model.disable_adapter(): base = stacked.result.model(**x).logits
    assert (trained - base).abs().max() > 1e-3, 'the adapters change the logits'


def test_stage2_spec_records_whether_stage1_was_merged_or_stacked(base_dir):
    "A stacked and a merged stage 2 never share a folder; stage 1 is the same either way."
    specs = lambda **o: phase1_specs(run_context('tiny', base_dir, overrides={**STACK, **o}))
    (pre_s, ins_s), (pre_m, ins_m) = specs(), specs(**{'profile.load_in_4bit': False})
    assert pre_s == pre_m and ins_s != ins_m
    assert ins_s['base']['stacked'] == ins_m['base']['merged'] == [fingerprint(pre_s)]
    assert ins_s['base']['merged'] == [] and 'stacked' not in ins_m['base'], 'nothing merged when stacked; the merged spec is as before'


def test_stacking_refuses_an_adapter_that_trains_whole_modules(base_dir, tmp_path):
    "The tiny profile's embeddings (modules_to_save) cannot stay frozen under a new adapter: only the merged path takes them."
    from gaokerena.stages import stack_on_stage1
    ctx, model, tok = tiny(base_dir)
    lora_config(ctx.settings.pretrain).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match='modules_to_save'): stack_on_stage1(model, tmp_path, ctx.settings.instruct)
