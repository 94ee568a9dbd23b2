"settings.ini reaches typed settings and the trainer configs exactly; bad settings fail by name."
import pytest
from trl import DPOConfig, SFTConfig
from gaokerena.config import SettingsError, load_settings, profiles, run_context
from gaokerena.sft import instruct_config, lora_config, pretrain_config, training_kwargs
from gaokerena.rlaif import dpo_rows

GPU_PROFILES = ['colab-l4', 'colab-a100', 'h100']


def test_profiles_present():
    assert set(profiles()) == {'tiny', *GPU_PROFILES}


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
    assert ic.completion_only_loss and ic.weight_decay == 0.5 and ic.max_steps == s.instruct.max_steps


def test_overrides_win_and_convert():
    s = load_settings('colab-a100', {'instruct.learning_rate': '1e-4', 'dpo.beta': 0.2, 'profile.eval_limit': 7,
                                     'llm.base_url': 'http://127.0.0.1:1'})
    assert (s.instruct.learning_rate, s.dpo.beta, s.profile.eval_limit, s.llm.base_url) == (1e-4, 0.2, 7, 'http://127.0.0.1:1')


@pytest.mark.parametrize('over,msg', [
    ({'pretrain.learning_rat': 1}, "[pretrain]: unknown key 'learning_rat'"),
    ({'eval.cot_samples': 'five'}, '[eval] cot_samples'),
    ({'profile.load_in_4bit': 'maybe'}, 'load_in_4bit'),
    ({'training.lr': 1}, "unknown section 'training'"),
])
def test_bad_overrides_name_section_and_key(over, msg):
    with pytest.raises(SettingsError, match=None) as e: load_settings('tiny', over)
    assert msg in str(e.value)


def test_bad_file_names_section_and_key(tmp_path):
    from gaokerena.config import find_settings
    text = find_settings().read_text().replace('weight_decay = 0.5', 'weight_decay = half', 1)
    (tmp_path/'settings.ini').write_text(text)
    with pytest.raises(SettingsError) as e: load_settings('tiny', path=tmp_path/'settings.ini')
    assert '[instruct] weight_decay' in str(e.value) and str(tmp_path) in str(e.value)
    (tmp_path/'s2.ini').write_text(find_settings().read_text() + '\n[pretrian]\nx = 1\n')
    with pytest.raises(SettingsError, match=r'unknown section \[pretrian\]'): load_settings('tiny', path=tmp_path/'s2.ini')


def test_run_context_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ctx = run_context('tiny')
    assert ctx.run_dir == (tmp_path/'runs'/'tiny').resolve() and ctx.data_dir is None


def test_pair_format_switch():
    with pytest.raises(ValueError, match='pair_format'): dpo_rows([], 'xml')
