"settings.ini reaches typed settings and the trainer configs exactly; bad settings fail by name."
import pytest
from trl import DPOConfig, SFTConfig
from gaokerena.config import SettingsError, load_settings, profiles, run_context
from gaokerena.stages import instruct_config, lora_config, pretrain_config, training_kwargs
from gaokerena.rlaif import dpo_rows

GPU_PROFILES = ['colab-l4', 'colab-a100', 'h100']
SCALE_PROFILES = ['colab-t4', 'h100x4-32b']   # tiny-aya on a free T4, aya-expanse-32b on four H100s (tests/test_scale.py)


def test_profiles_present():
    assert set(profiles()) == {'tiny', *GPU_PROFILES, *SCALE_PROFILES}


@pytest.mark.parametrize('profile', GPU_PROFILES)
def test_paper_hyperparameters_reach_trainer_configs(profile, tmp_path):
    s = load_settings(profile)
    assert s.profile.model_id == 'CohereLabs/aya-expanse-8b' and s.profile.bf16
    # bf16 needs a GPU to build a TrainingArguments; every other field must arrive unchanged
    cpu = lambda kw: {**kw, 'bf16': False, 'use_cpu': True}
    expected = {
        'pretrain': dict(learning_rate=5e-4, per_device_train_batch_size=2, gradient_accumulation_steps=16,
                         max_grad_norm=0.3, warmup_steps=0.03, weight_decay=0.1, max_length=1024, num_train_epochs=1,
                         lr_scheduler_type='cosine'),
        'instruct': dict(learning_rate=5e-4, per_device_train_batch_size=2, gradient_accumulation_steps=16,
                         max_grad_norm=0.3, warmup_steps=0.03, weight_decay=0.5, max_length=1024, num_train_epochs=1),
        'dpo': dict(learning_rate=1e-6, per_device_train_batch_size=1, gradient_accumulation_steps=4, warmup_steps=0.03,
                    num_train_epochs=1),
    }
    configs = {
        'pretrain': SFTConfig(output_dir=str(tmp_path), **cpu(training_kwargs(s.pretrain, s))),
        'instruct': SFTConfig(output_dir=str(tmp_path), **cpu(training_kwargs(s.instruct, s))),
        'dpo': DPOConfig(output_dir=str(tmp_path), beta=s.dpo.beta, **cpu(training_kwargs(s.dpo, s))),
    }
    for stage, exp in expected.items():
        kw = training_kwargs(getattr(s, stage), s)
        assert kw['bf16'] is True and kw['gradient_checkpointing'] is True and kw['use_cpu'] is False
        for k, v in exp.items():
            assert getattr(configs[stage], k) == pytest.approx(v), (stage, k)
    assert configs['dpo'].beta == 0.1
    lora = {st: lora_config(getattr(s, st)) for st in ('pretrain', 'instruct', 'dpo')}
    assert [(l.r, l.lora_alpha, l.lora_dropout) for l in lora.values()] == [(8, 16, 0.05), (2, 2, 0.4), (16, 16, 0.05)]
    assert all(l.target_modules == 'all-linear' for l in lora.values())
    assert s.pretrain.corpus_fraction == 0.6
    assert (s.eval.cot_samples, s.eval.cot_temperature, s.eval.vote_threshold, s.eval.max_new_tokens) == (5, 1.0, 3, 1024)


def test_l4_loads_in_4bit_a100_does_not():
    assert load_settings('colab-l4').profile.load_in_4bit and not load_settings('colab-a100').profile.load_in_4bit


def test_tiny_configs_build_on_cpu(tmp_path):
    s = load_settings('tiny')
    pc, ic = pretrain_config(s, tmp_path/'p'), instruct_config(s, tmp_path/'i')
    assert not pc.packing and pc.use_cpu and not pc.bf16   # stage 1's blocks arrive packed by sft.pack_blocks
    assert ic.completion_only_loss and ic.max_steps == s.instruct.max_steps
    # the tiny model must learn in seconds: no weight decay or dropout, a full-rank adapter and trained embeddings (Appendix W);
    # the GPU profiles keep the paper's regularisation
    assert (ic.weight_decay, s.instruct.lora_dropout, s.instruct.modules_to_save) == (0.0, 0.0, 'embed_tokens')
    a100 = load_settings('colab-a100')
    assert (a100.instruct.weight_decay, a100.instruct.lora_dropout, a100.instruct.modules_to_save) == (0.5, 0.4, '')


def test_overrides_win_and_convert():
    s = load_settings('colab-a100', {'instruct.learning_rate': '1e-4', 'dpo.beta': 0.2, 'profile.eval_limit': 7,
                                     'llm.base_url': 'http://127.0.0.1:1'})
    assert (s.instruct.learning_rate, s.dpo.beta, s.profile.eval_limit, s.llm.base_url) == (1e-4, 0.2, 7, 'http://127.0.0.1:1')


@pytest.mark.parametrize('over,msg', [
    ({'pretrain.learning_rat': 1}, "[pretrain]: unknown key 'learning_rat'"),
    ({'eval.cot_samples': 'five'}, '[eval] cot_samples'),
    ({'profile.load_in_4bit': 'maybe'}, 'load_in_4bit'),
    ({'training.lr': 1}, "unknown section 'training'"),
    ({'profile.data_source': 'hbu'}, "[profile:tiny] data_source: 'hbu' is not one of sample, hub"),
    ({'profile.teacher': 'apii'}, "[profile:tiny] teacher: 'apii' is not one of api, local"),
    ({'profile.judge': 'gpt'}, "[profile:tiny] judge: 'gpt' is not one of api, local"),
    ({'profile.use_vllm': 'sometimes'}, "use_vllm: 'sometimes' is not one of auto, true, false"),
    ({'dpo.pair_format': 'xml'}, "[dpo] pair_format: 'xml' is not one of chat, plain"),
    ({'rlaif.pairs_source': 'pub'}, "[rlaif] pairs_source: 'pub' is not one of generate, published"),
    ({'instruct.lora_dropout': 1.7}, '[instruct] lora_dropout: 1.7 is outside [0, 1)'),
    ({'pretrain.learning_rate': -1}, '[pretrain] learning_rate: -1.0 is outside (0, inf)'),
    ({'dpo.learning_rate': 0}, '[dpo] learning_rate: 0.0 is outside (0, inf)'),
    ({'pretrain.corpus_fraction': 1.5}, '[pretrain] corpus_fraction: 1.5 is outside (0, 1]'),
    ({'rlaif.method_b_share': -0.1}, '[rlaif] method_b_share: -0.1 is outside [0, 1]'),
    ({'eval.cot_samples': 0}, '[eval] cot_samples: 0 is outside [1, inf)'),
    ({'eval.vote_threshold': 9}, '[eval] vote_threshold: 9 is more than cot_samples = 5'),
    ({'eval.passk_max_k': 6}, '[eval] passk_max_k: 6 is more than cot_samples = 5'),
    ({'llm.timeout': 0}, '[llm] timeout: 0.0 is outside (0, inf)'),
    ({'translate.min_rating': 6}, '[translate] min_rating: 6 is outside [0, 5]'),
    ({'referee_2.usd_per_million_input': -2}, '[referee_2] usd_per_million_input: -2.0 is outside [0, inf)'),
    ({'profile.gpu': 'Z100'}, "[profile:tiny] gpu: 'Z100' is not in [gpu_prices]"),
    ({'gpu_prices.T4': -0.1}, '[gpu_prices] T4: -0.1 is outside [0, inf)'),
    ({'gpu_tdp_watts.Z100': 300}, "[gpu_tdp_watts] Z100: GPU 'Z100' has no price in [gpu_prices]"),
    ({'throughput.sft_token_per_s@L4': 100}, "[throughput] sft_token_per_s@L4: unknown task 'sft_token_per_s'"),
    ({'throughput.sft_tokens_per_s@Z100': 100}, "[throughput] sft_tokens_per_s@Z100: GPU 'Z100' has no price"),
    ({'throughput.cot_s_per_sample@L4': 0}, '[throughput] cot_s_per_sample@L4: 0.0 is outside (0, inf)'),
    ({'sources.corpuss': 'x/y'}, "[sources] corpuss: unknown key"),
    ({'carbon.grid_intensity': -1}, '[carbon] grid_intensity: -1.0 is outside [0, inf)'),
])
def test_bad_overrides_name_section_and_key(over, msg):
    with pytest.raises(SettingsError, match=None) as e: load_settings('tiny', over)
    assert msg in str(e.value)


def test_overrides_reach_the_tables():
    s = load_settings('h100', {'gpu_prices.H200': '3.5', 'gpu_tdp_watts.H200': 700, 'profile.gpu': 'H200',
                               'throughput.dpo_pairs_per_s@H200': 4.0, 'sources.corpus': 'me/corpus', 'carbon.grid_intensity': 0.1})
    assert (s.price_per_hour(), s.gpu_tdp_watts['H200'], s.throughput['dpo_pairs_per_s@H200']) == (3.5, 700.0, 4.0)
    assert (s.sources['corpus'], s.sources['mf3qa'], s.grid_intensity) == ('me/corpus', 'gaokerena/MF3QA', 0.1)
    with pytest.raises(SettingsError, match=r"gpu: 'H200' is not in \[gpu_tdp_watts\]"):
        load_settings('h100', {'gpu_prices.H200': '3.5', 'profile.gpu': 'H200'})


def test_translation_endpoints():
    s = load_settings('tiny', {'referee_2.model': '', 'translator.base_url': 'http://127.0.0.1:1/v1'})
    assert (s.translator.model, s.translator.base_url, s.translate.min_rating) == ('deepseek-chat', 'http://127.0.0.1:1/v1', 5)
    assert [e.model for e in s.referees] == ['gpt-4.1-mini'] and [e.model for e in load_settings().referees] == ['gpt-4.1-mini', 'grok-3-mini']
    assert {load_settings().referee_1.base_url, load_settings().referee_2.base_url} == {'https://api.openai.com/v1', 'https://api.x.ai/v1'}


def test_bad_file_names_section_and_key(tmp_path):
    from gaokerena.config import find_settings
    text = find_settings().read_text().replace('weight_decay = 0.5', 'weight_decay = half', 1)
    (tmp_path/'settings.ini').write_text(text)
    with pytest.raises(SettingsError) as e: load_settings('colab-a100', path=tmp_path/'settings.ini')
    assert '[instruct] weight_decay' in str(e.value) and str(tmp_path) in str(e.value)
    (tmp_path/'s2.ini').write_text(find_settings().read_text() + '\n[pretrian]\nx = 1\n')
    with pytest.raises(SettingsError, match=r'unknown section \[pretrian\]'): load_settings('tiny', path=tmp_path/'s2.ini')
    (tmp_path/'s3.ini').write_text(find_settings().read_text().replace('sft_tokens_per_s@L4 = 242', 'sft_tokens_per_sec@L4 = 242'))
    with pytest.raises(SettingsError, match=r"s3.ini \[throughput\] sft_tokens_per_sec@L4: unknown task"): load_settings('tiny', path=tmp_path/'s3.ini')
    (tmp_path/'s4.ini').write_text(find_settings().read_text().replace('teacher = world', 'teacher = apii'))
    with pytest.raises(SettingsError, match=r"s4.ini \[profile:tiny\] teacher: 'apii'"): load_settings('tiny', path=tmp_path/'s4.ini')


def test_run_context_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ctx = run_context('tiny')
    assert ctx.run_dir == (tmp_path/'runs'/'tiny').resolve() and ctx.data_dir is None


def test_pair_format_switch():
    with pytest.raises(ValueError, match='pair_format'): dpo_rows([], 'xml')
