"The tiny aya: tokenizer with aya's tokens and template, CohereForCausalLM, cached per run; the hub path fails clearly offline."
import pytest, torch
from transformers import CohereForCausalLM
from gaokerena.config import run_context
from gaokerena.models import (build_tiny_model, build_tokenizer, hub_load_kwargs, load_model_and_tokenizer, sample_texts,
                              tiny_base_dir, tiny_model_and_tokenizer, tokenizer_texts)
from gaokerena.world import world_texts


@pytest.fixture(scope='module')
def tok():
    return build_tokenizer(sample_texts(), 3000)


def test_tokenizer_has_aya_tokens_and_left_padding(tok):
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ('<BOS_TOKEN>', '<|END_OF_TURN_TOKEN|>', '<PAD>')
    assert tok.pad_token_id != tok.eos_token_id and tok.padding_side == 'left'
    for t in ['<|START_OF_TURN_TOKEN|>', '<|USER_TOKEN|>', '<|CHATBOT_TOKEN|>', '<|SYSTEM_TOKEN|>']:
        assert len(tok(t, add_special_tokens=False)['input_ids']) == 1, t
    assert 2000 <= len(tok) <= 4000


@pytest.mark.parametrize('text', ['می‌شود', 'فشار خون ۱۴۰ روی ۹۰ است.', 'كيفيت يك', 'DNA و ژن‌ها', '١٢٣ abc'])
def test_byte_level_roundtrip(tok, text):
    assert tok.decode(tok(text, add_special_tokens=False)['input_ids']) == text


def test_chat_template_is_aya(tok):
    msgs = [{'role': 'user', 'content': 'سلام'}, {'role': 'assistant', 'content': 'درود'}]
    s = tok.apply_chat_template(msgs, tokenize=False)
    assert s == ('<BOS_TOKEN><|START_OF_TURN_TOKEN|><|USER_TOKEN|>سلام<|END_OF_TURN_TOKEN|>'
                 '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>درود<|END_OF_TURN_TOKEN|>')
    ids = tok.apply_chat_template(msgs, tokenize=True, return_dict=False)
    assert ids[-1] == tok.eos_token_id and tok.pad_token_id not in ids


def test_left_padding_batches(tok):
    enc = tok(['سلام', 'فشار خون بالا معمولاً علامتی ندارد'], padding=True, return_tensors='pt')
    assert enc['input_ids'][0, 0] == tok.pad_token_id and enc['attention_mask'][0, 0] == 0
    assert enc['input_ids'][1, -1] != tok.pad_token_id


def test_tiny_model_shape(tok):
    m = build_tiny_model(tok, 64)
    c = m.config
    assert isinstance(m, CohereForCausalLM)
    assert (c.vocab_size, c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads) == (len(tok), 64, 2, 4, 2)
    assert c.pad_token_id == tok.pad_token_id and c.eos_token_id == tok.eos_token_id
    # chosen for learning in seconds (Appendix W), not copied from aya: a wide MLP, large random weights, logit scale 1
    assert (c.intermediate_size, c.initializer_range, c.logit_scale) == (256, 0.1, 1.0)
    assert build_tiny_model(tok, 64, layers=3).config.num_hidden_layers == 3
    out = m(**tok(['سلام'], return_tensors='pt'))
    assert out.logits.shape == (1, len(tok(['سلام'])['input_ids'][0]), len(tok))


def test_tiny_tokenizer_learns_the_profiles_text(tmp_path):
    "The tiny profile's tokenizer is trained on the miniature world: its names are whole tokens, its vocabulary small."
    from gaokerena.world import world_facts
    ctx = run_context('tiny', run_dir=tmp_path)
    assert ctx.settings.profile.data_source == 'world' and tokenizer_texts(ctx.settings) == world_texts()
    _, t = tiny_model_and_tokenizer(ctx)
    assert 1000 <= len(t) <= ctx.settings.profile.tiny_vocab_size
    names = {f['s'] for f in world_facts() if ' ' not in f['s']}
    assert sum(len(t(' ' + n, add_special_tokens=False)['input_ids']) == 1 for n in names) > 0.9 * len(names)
    assert tokenizer_texts(run_context('tiny', run_dir=tmp_path, overrides={'profile.data_source': 'sample'}).settings) == sample_texts()


def test_tiny_model_cached_in_run_dir(tmp_path):
    ctx = run_context('tiny', run_dir=tmp_path)
    m1, _ = tiny_model_and_tokenizer(ctx)
    assert tiny_base_dir(ctx).parent.parent == tmp_path/'tiny-base'         # tiny-base/<fingerprint of its spec>/model
    stamp = (tiny_base_dir(ctx)/'config.json').stat().st_mtime_ns
    m2, t2 = load_model_and_tokenizer(ctx)
    assert (tiny_base_dir(ctx)/'config.json').stat().st_mtime_ns == stamp
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    assert t2.padding_side == 'left' and t2.chat_template


def test_hub_model_offline_fails_with_clear_help(tmp_path):
    "The real loading code runs up to the download, then says how to get access."
    ctx = run_context('colab-a100', run_dir=tmp_path)
    with pytest.raises(RuntimeError) as e: load_model_and_tokenizer(ctx)
    msg = str(e.value)
    assert 'CohereLabs/aya-expanse-8b' in msg and 'HF_TOKEN' in msg and 'licence' in msg


def test_l4_profile_asks_for_4bit(tmp_path):
    kw = hub_load_kwargs(run_context('colab-l4', run_dir=tmp_path).settings)
    q = kw['quantization_config']
    assert q.load_in_4bit and q.bnb_4bit_quant_type == 'nf4' and kw['dtype'] == torch.bfloat16
    assert 'quantization_config' not in hub_load_kwargs(run_context('h100', run_dir=tmp_path).settings)


# --- adapters: never merged into quantised weights; several served as one, exactly --------------------------------------

class Linear4bit(torch.nn.Linear):
    "A stand-in for bitsandbytes' 4-bit linear layer (bitsandbytes needs CUDA): peft wraps it; only its class name says 4-bit."


def quantised_peft_model(tok):
    "A tiny model whose first attention projection is a (stand-in) 4-bit layer, with a LoRA adapter on every linear layer."
    from peft import LoraConfig, get_peft_model
    model = build_tiny_model(tok, 32)
    attn = model.model.layers[0].self_attn
    q = Linear4bit(attn.q_proj.in_features, attn.q_proj.out_features, bias=False)
    q.load_state_dict(attn.q_proj.state_dict())
    attn.q_proj = q
    return get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules='all-linear', init_lora_weights=False))


def test_a_merge_into_quantised_weights_raises_everywhere(tok, tmp_path):
    from gaokerena.stages import save_merged
    peft = quantised_peft_model(tok)
    with pytest.raises(ValueError, match='quantised'): save_merged(peft, tok, tmp_path/'merged')   # 01_sft's instruct.save_merged
    from gaokerena.models import QuantizedMergeError, merge_adapters, quantized_layers
    assert not (tmp_path/'merged').exists() and quantized_layers(peft) == ['base_model.model.model.layers.0.self_attn.q_proj']
    with pytest.raises(QuantizedMergeError, match='rounds away'): merge_adapters(peft)      # the one place the kit merges
    from peft import LoraConfig, get_peft_model
    plain = get_peft_model(build_tiny_model(tok, 32), LoraConfig(r=4, target_modules='all-linear'))
    assert not quantized_layers(plain) and type(merge_adapters(plain)).__name__ == 'CohereForCausalLM'


def test_a_4bit_profile_refuses_the_merges_before_any_work(tmp_path):
    "A merge that is still unavoidable (the Phase-1 adapters into the DPO student) stops at once on a 4-bit profile, naming the setting."
    from gaokerena.models import QuantizedMergeError
    from gaokerena.stages import check_mergeable
    l4 = run_context('colab-l4', run_dir=tmp_path).settings
    with pytest.raises(QuantizedMergeError, match=r'\[profile:colab-l4\] load_in_4bit = true: DPO trains one adapter'):
        check_mergeable(l4, 'DPO trains one adapter, so the Phase-1 adapters are merged into the student first')
    check_mergeable(run_context('colab-a100', run_dir=tmp_path).settings, 'a merge into bf16 weights is allowed')


def test_served_adapters_give_the_bf16_merged_logits(tmp_path):
    """What vLLM serves (the base with every adapter combined into one LoRA, unmerged) equals the model with the adapters
    merged into a bf16 copy of the base, and load_recipe's two ways agree: merged (the DPO student's base) and on top."""
    from peft import LoraConfig, PeftModel, get_peft_model
    from gaokerena.models import ModelRecipe, combine_adapters, load_recipe, merge_adapters, recipe_identity
    ctx = run_context('tiny', run_dir=tmp_path)
    base, tok = tiny_model_and_tokenizer(ctx)
    folders = []
    for i, r in enumerate((8, 2, 16)):                    # stage 1, stage 2, DPO: the papers' ranks, random updates
        torch.manual_seed(i)
        folders.append(tmp_path/f'adapter{i}')
        get_peft_model(base.__class__.from_pretrained(base.name_or_path), LoraConfig(
            r=r, lora_alpha=2 * r, target_modules='all-linear', init_lora_weights=False)).save_pretrained(folders[-1])
    x = tok(['سردرد و تب دارم؛ چه کنم؟'], return_tensors='pt')      # 'I have a headache and fever; what should I do?'
    bf16 = base.__class__.from_pretrained(base.name_or_path, dtype=torch.bfloat16)
    for f in folders: bf16 = merge_adapters(PeftModel.from_pretrained(bf16, str(f)))
    served = PeftModel.from_pretrained(base.__class__.from_pretrained(base.name_or_path, dtype=torch.bfloat16),
                                       str(combine_adapters(folders, tmp_path/'served')))
    with torch.no_grad():
        merged_logits, served_logits = bf16(**x).logits.float(), served(**x).logits.float()
        fp32_merged = load_recipe(ctx, ModelRecipe('tiny', merged=tuple(folders)))[0](**x).logits
        fp32_on_top = load_recipe(ctx, ModelRecipe('tiny', adapters=tuple(folders)))[0](**x).logits
        plain = base(**x).logits
    assert torch.allclose(fp32_merged, fp32_on_top, atol=1e-5)
    assert (served_logits - merged_logits).abs().max() < 0.05 * (fp32_on_top - plain).abs().max()   # bf16 rounding only
    assert (fp32_on_top - plain).abs().max() > 1e-2, 'the adapters change the model'
    one = recipe_identity(ctx, ModelRecipe('tiny', adapters=tuple(folders)))
    assert one != recipe_identity(ctx, ModelRecipe('tiny', adapters=tuple(folders[:2]))) and one['base']['model'] == 'tiny'
