#!/usr/bin/env python
"""GPU benchmark with a randomly initialised model of aya-expanse-8b's exact shape (no download; bf16 on the GPU):
LoRA SFT step tokens/s and peak memory (plain transformers, and unsloth where installed), DPO steps (the paper's
batch 1 x 4 and pair lengths), batched generation tokens/s for straight answers and CoT samples, log-likelihood questions/s -- all
through the package's code paths (load_model_and_tokenizer / load_for_training, make_trainer, dpo_trainer, generate,
letter_logprobs) on a model folder saved on the spot. It then projects GPU-hours and dollars for the papers' full
workloads on L4, A100 and H100 with gaokerena.ledger.estimate_cost, next to what the papers spent.

`--shape tiny` runs the same code on the tiny model (on CPU here): it checks the script end to end, its numbers say
nothing about a GPU. `--update-settings RESULTS.json` writes a GPU run's measured throughputs into settings.ini
[throughput] (refused for CPU or tiny-shape results)."""
from __future__ import annotations
import json, os, re, shutil, sys, tempfile
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, finish, parser, reset_peak, timed
from eval_throughput import PUBLISHED_MEDIAN_TOKENS, benchmark_questions
from train_throughput import StepClock, dpo_arm, pair_rows
import datasets, torch, transformers
from transformers import AutoModelForCausalLM, CohereConfig
from gaokerena.config import find_settings, load_settings, run_context
from gaokerena.sources import load_rows
from gaokerena.evaluate import letter_logprobs, render_prompt
from gaokerena.generation import VLLMGenerator, generate, vllm_available
from gaokerena.ledger import estimate_cost, peak_memory_gb, throughput_for
from gaokerena.models import ModelRecipe, build_tiny_model, build_tokenizer, load_model_and_tokenizer, sample_texts
from gaokerena.sft import pack_blocks, tokenize_documents
from gaokerena.stages import load_for_training, make_trainer, pretrain_config

# config.json of CohereLabs/aya-expanse-8b on the hub (transformers 5 spells rope_theta as rope_parameters).
AYA_EXPANSE_8B = dict(vocab_size=256000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                      num_attention_heads=32, num_key_value_heads=8, hidden_act='silu', max_position_embeddings=8192,
                      initializer_range=0.02, layer_norm_eps=1e-5, logit_scale=0.125, attention_bias=False,
                      attention_dropout=0.0, use_qk_norm=False, tie_word_embeddings=True,
                      rope_parameters={'rope_type': 'default', 'rope_theta': 10000.0})
# The papers' full workloads and what they spent on them.
WORKLOADS = {'sft': (57_000_000, 'SFT tokens (Phase 1)'), 'dpo': (11_000, 'DPO pairs'),
             'straight': (1257, 'straight questions'), 'cot': (5 * 1257, 'CoT samples (5 per question)')}
PAPERS = {'sft': ('A100-40GB', 19.5), 'dpo': ('H100', 1.0), 'straight': ('L4', 1257 * 10 / 3600), 'cot': ('L4', 5 * 1257 * 35 / 3600)}
TASK_KEYS = {'sft': 'sft_tokens_per_s', 'dpo': 'dpo_pairs_per_s', 'straight': 'straight_s_per_question', 'cot': 'cot_s_per_sample'}
# Scaling a measurement to another GPU: training is compute-bound (dense bf16 TFLOPS), decoding memory-bound (GB/s
# over the bytes of weights read per token). The kit's L4 profile trains and decodes aya in 4-bit (QLoRA ~30% slower
# per FLOP; ~5.5 GB of weights instead of ~16 GB in bf16) -- the same reasoning as settings.ini [throughput].
GPU_SPECS = {'L4': (121, 300), 'A100-40GB': (312, 1555), 'A100-80GB': (312, 2039), 'H100': (989, 3350)}
FOUR_BIT = {'L4'}
QLORA_OVERHEAD, WEIGHTS_GB_BF16, WEIGHTS_GB_4BIT = 1.3, 16.0, 5.5
PROJECT_ON = ('L4', 'A100-40GB', 'H100')


def gpu_key(name: str | None, memory_gb: float | None) -> str:
    "The settings.ini GPU name of a CUDA device name ('cpu' without one)."
    if not name: return 'cpu'
    for key in ('H100', 'L4', 'T4'):
        if key in name: return key
    if 'A100' in name: return 'A100-80GB' if (memory_gb or 0) > 60 else 'A100-40GB'
    raise SystemExit(f"unknown GPU {name!r}: add it to GPU_SPECS in bench/gpu.py and to settings.ini's price tables")


def speed_factor(kind: str, src: str, dst: str) -> float:
    "How much faster `dst` runs `kind` work ('train' or 'decode') than `src`, from their specifications."
    def speed(g):
        tflops, gbps = GPU_SPECS[g]
        if kind == 'train': return tflops / (QLORA_OVERHEAD if g in FOUR_BIT else 1)
        return gbps / (WEIGHTS_GB_4BIT if g in FOUR_BIT else WEIGHTS_GB_BF16)
    return speed(dst) / speed(src)


def rates_on(measured: dict, src: str, dst: str) -> dict:
    "Units per second of each workload on `dst`, scaled from those `measured` on `src`."
    kinds = {'sft': 'train', 'dpo': 'train', 'straight': 'decode', 'cot': 'decode'}
    return {task: rate * (1.0 if src == dst else speed_factor(kinds[task], src, dst)) for task, rate in measured.items()}


def project(rates_by_gpu: dict, settings) -> list[dict]:
    "GPU-hours and dollars of the papers' workloads at the given rates ({gpu: {task: units/s}}), at both price tables."
    rows = []
    for gpu, rates in rates_by_gpu.items():
        for task, rate in rates.items():
            units, what = WORKLOADS[task]
            for prices in ('gpu_prices', 'paper_gpu_prices'):
                if gpu not in getattr(settings, prices): continue
                e = estimate_cost(units, rate, gpu, settings, prices, f"{what} ({units:,})")
                rows.append(dict(task=task, gpu=gpu, prices=prices, units_per_s=rate, gpu_hours=e.hours, usd=e.usd, text=e.text))
    return rows


def papers_spent(settings) -> list[dict]:
    "What the papers spent on each workload: GPU, hours and dollars at the papers' own prices where they gave them."
    out = []
    for task, (gpu, hours) in PAPERS.items():
        price = settings.paper_gpu_prices.get(gpu, settings.gpu_prices.get(gpu))
        out.append(dict(task=task, gpu=gpu, gpu_hours=hours, usd=hours * price))
    return out


def save_model(shape: str, tokenizer, folder: Path, device: str) -> Path:
    "A randomly initialised model of `shape` ('aya-expanse-8b' in bf16, or the tiny profile's) saved with `tokenizer`."
    if shape == 'tiny': model = build_tiny_model(tokenizer)
    else:
        ids = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
        with torch.device(device): model = AutoModelForCausalLM.from_config(CohereConfig(**AYA_EXPANSE_8B, **ids), dtype=torch.bfloat16)
    model.save_pretrained(folder); tokenizer.save_pretrained(folder)
    del model
    return folder


def sft_arm(ctx, docs, max_length: int, device: str) -> dict:
    "Tokens/s and peak memory of LoRA continued pre-training steps (stage 1's settings) on packed blocks."
    s = ctx.settings
    model, tokenizer = load_for_training(ctx)
    blocks = pack_blocks(docs, max_length)
    reset_peak(device)
    clock = StepClock()
    trainer = make_trainer(model, tokenizer, blocks, pretrain_config(s, ctx.run_dir/'sft'), s.pretrain, s, callbacks=[clock])
    trainer.train()
    sec, tokens, rate = clock.rate()
    out = dict(tokens_per_s=rate, tokens=tokens, seconds=sec, steps=len(clock.marks), peak_memory_gb=peak_memory_gb(device),
               batch=s.pretrain.per_device_train_batch_size, max_length=max_length,
               gradient_checkpointing=s.profile.gradient_checkpointing)
    del trainer, model
    return out


def generation_arms(ctx, prompts: list[str], new_tokens: dict, device: str) -> dict:
    "Batched generation tokens/s for straight answers and CoT samples, and log-likelihood questions/s."
    s = ctx.settings
    model, tokenizer = load_model_and_tokenizer(ctx)
    model.eval()
    generate(model, tokenizer, prompts[:2], 2)                                           # warm-up, not timed
    out = {}
    for style, temperature in (('straight', s.eval.straight_temperature), ('cot', s.eval.cot_temperature)):
        reset_peak(device)
        _, sec = timed(generate, model, tokenizer, prompts, new_tokens[style], temperature, s.eval.seed)
        out[style] = dict(batch=len(prompts), new_tokens=new_tokens[style], seconds=sec,
                          tokens_per_s=len(prompts) * new_tokens[style] / sec, s_per_unit=sec / len(prompts),
                          peak_memory_gb=peak_memory_gb(device))
    _, sec = timed(letter_logprobs, model, tokenizer, prompts)
    out['loglik'] = dict(batch=len(prompts), seconds=sec, questions_per_s=len(prompts) / sec)
    del model
    return out


def vllm_arm(ctx, folder: Path, prompts: list[str], new_tokens: dict) -> dict:
    "Tokens/s of vLLM (gaokerena.generation.VLLMGenerator) on the same prompts, or why it was not timed."
    if not vllm_available(): return {'skipped': 'vLLM not installed or no GPU'}
    s = ctx.settings
    out = {}
    with VLLMGenerator(ctx, ModelRecipe(str(folder))) as generator:    # its own process; needs no transformers model on the GPU
        generator(prompts[:2], 2)                                                        # warm-up, not timed
        for style, temperature in (('straight', s.eval.straight_temperature), ('cot', s.eval.cot_temperature)):
            _, sec = timed(generator, prompts, new_tokens[style], temperature, s.eval.seed)
            out[style] = dict(batch=len(prompts), new_tokens=new_tokens[style], seconds=sec,
                              tokens_per_s=len(prompts) * new_tokens[style] / sec, s_per_unit=sec / len(prompts))
    return out


def unsloth_importable(device: str) -> str | None:
    "Why unsloth cannot be timed here, or None when it can."
    if device != 'cuda': return 'no GPU (unsloth needs one)'
    try: import unsloth  # noqa: F401
    except Exception as e: return f'not importable: {type(e).__name__}: {e}'[:300]
    return None


def measure(args) -> dict:
    "Build and save the model, time every arm, and return the record and last-line values."
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    name = torch.cuda.get_device_name(0) if device == 'cuda' else None
    gpu = gpu_key(name, torch.cuda.get_device_properties(0).total_memory / 1e9 if name else None)
    if args.shape == 'aya-expanse-8b' and device == 'cpu':
        raise SystemExit("no GPU: the aya-expanse-8b shape needs one (~16 GB in bf16); use --shape tiny to check the script")
    profile = 'tiny' if args.shape == 'tiny' else {'L4': 'colab-l4', 'A100-40GB': 'colab-a100'}.get(gpu, 'h100')
    work = Path(tempfile.mkdtemp(prefix='bench-gpu-'))
    try:
        tokenizer = build_tokenizer(sample_texts(), load_settings(profile).profile.tiny_vocab_size)
        folder = save_model(args.shape, tokenizer, work/'model', device)
        stage = {'per_device_train_batch_size': args.sft_batch, 'gradient_accumulation_steps': 1, 'max_length': args.max_length,
                 'max_steps': args.steps, 'logging_steps': 1, 'save_steps': 10 * args.steps}
        base = {'profile.model_id': str(folder), 'profile.gpu': gpu, 'profile.use_vllm': 'false',
                **{f'pretrain.{k}': v for k, v in stage.items()},
                'dpo.max_steps': args.dpo_steps, 'dpo.save_steps': 10 * args.dpo_steps, 'dpo.logging_steps': 1}
        if args.shape == 'tiny':   # the paper's DPO batch and length on the tiny profile too
            paper = load_settings('h100').dpo
            base.update({'dpo.per_device_train_batch_size': paper.per_device_train_batch_size,
                         'dpo.gradient_accumulation_steps': paper.gradient_accumulation_steps,
                         'dpo.max_length': min(paper.max_length, 4 * args.max_length)})
        def ctx(sub, **over): return run_context(profile, work/sub, overrides={**base, **over})
        docs = tokenize_documents(load_rows('corpus').rows * args.corpus_repeats, tokenizer)
        sft = {'plain': sft_arm(ctx('sft-plain', **{'profile.use_unsloth': 'false'}), docs, args.max_length, device)}
        why = unsloth_importable(device)
        sft['unsloth'] = ({'skipped': why} if why else
                          sft_arm(ctx('sft-unsloth', **{'profile.use_unsloth': 'true'}), docs, args.max_length, device))
        pairs, pairs_from = pair_rows()
        dpo = {**dpo_arm(ctx('dpo'), pairs, device), 'pairs_from': pairs_from}
        questions, questions_from = benchmark_questions(args.gen_batch, 0)
        gen = generation_arms(ctx('gen'), [render_prompt(q) for q in questions], args.new_tokens, device)
        gen['questions_from'] = questions_from
        gen['vllm'] = vllm_arm(ctx('vllm'), folder, [render_prompt(q) for q in questions], args.new_tokens)
    finally: shutil.rmtree(work, ignore_errors=True)
    best_sft = max((a['tokens_per_s'] for a in sft.values() if 'tokens_per_s' in a))
    fastest = {style: min(g[style]['s_per_unit'] for g in (gen, gen['vllm']) if style in g) for style in ('straight', 'cot')}
    measured = {'sft': best_sft, 'dpo': dpo['pairs_per_s'], 'straight': 1 / fastest['straight'], 'cot': 1 / fastest['cot']}
    settings = load_settings(profile)
    on_gpu = gpu in GPU_SPECS and args.shape == 'aya-expanse-8b'
    rates = {g: rates_on(measured, gpu, g) for g in PROJECT_ON} if on_gpu else {gpu: measured}
    from_settings = {g: {t: throughput_for(settings, TASK_KEYS[t], g) for t in WORKLOADS
                         if f'{TASK_KEYS[t]}@{g}' in settings.throughput} for g in PROJECT_ON}
    record = dict(shape=args.shape, gpu=gpu, profile=profile, measured_on_gpu=on_gpu,
                  note=None if on_gpu else 'tiny model on CPU: checks the script end to end; not a GPU measurement',
                  model_config=AYA_EXPANSE_8B if args.shape != 'tiny' else 'tiny profile', sft=sft, dpo=dpo,
                  generation=gen, measured_units_per_s=measured, projection=project(rates, settings),
                  projection_from_settings=project(from_settings, settings), papers=papers_spent(settings))
    line = dict(gpu=gpu, sft_tokens_per_s=best_sft, sft_peak_gb=sft['plain']['peak_memory_gb'], dpo_pairs_per_s=dpo['pairs_per_s'],
                gen_tokens_per_s=gen['straight']['tokens_per_s'], loglik_questions_per_s=gen['loglik']['questions_per_s'])
    if on_gpu:
        hours = {r['task']: r['gpu_hours'] for r in record['projection'] if r['gpu'] == gpu and r['prices'] == 'gpu_prices'}
        line.update({f'{t}_h': h for t, h in hours.items()})
    return record, line


def measured_keys(result: dict) -> dict:
    "settings.ini [throughput] keys and values a GPU results file measured (only for its own GPU)."
    if not result.get('measured_on_gpu') or result.get('hardware', {}).get('device') != 'cuda':
        raise SystemExit("refusing to update settings.ini from a run that did not measure aya-expanse-8b's shape on a GPU "
                         f"(shape {result.get('shape')!r}, device {result.get('hardware', {}).get('device')!r})")
    m, gpu = result['measured_units_per_s'], result['gpu']
    return {f'sft_tokens_per_s@{gpu}': round(m['sft']), f'dpo_pairs_per_s@{gpu}': round(m['dpo'], 3),
            f'straight_s_per_question@{gpu}': round(1 / m['straight'], 3), f'cot_s_per_sample@{gpu}': round(1 / m['cot'], 3)}


def update_settings(results_path: Path, settings_path: Path) -> dict:
    "Write the throughputs a GPU results file measured into settings.ini [throughput], keeping every other line."
    result = json.loads(Path(results_path).read_text())
    values = measured_keys(result)
    lines = Path(settings_path).read_text(encoding='utf-8').splitlines()
    start = lines.index('[throughput]') + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith('[')), len(lines))
    while end > start and not lines[end - 1].strip(): end -= 1
    for key, value in values.items():
        hit = next((i for i in range(start, end) if re.match(rf'{re.escape(key)}\s*=', lines[i])), None)
        if hit is None:
            lines.insert(end, f'{key} = {value}'); end += 1
        else: lines[hit] = f'{key} = {value}'
    note = f"# measured by bench/gpu.py on {result['hardware']['gpu']} ({result['measured'][:10]}): {', '.join(values)}"
    lines.insert(end, note)
    Path(settings_path).write_text('\n'.join(lines) + '\n', encoding='utf-8')
    load_settings('tiny', path=settings_path)          # the file must still parse
    return values


def main(argv=None):
    ap = parser('gpu', __doc__)
    ap.add_argument('--shape', choices=('aya-expanse-8b', 'tiny'), default='aya-expanse-8b')
    ap.add_argument('--steps', type=int, default=8, help='SFT optimizer steps (the first is not counted)')
    ap.add_argument('--sft-batch', type=int, default=2, help='rows per SFT step (2 in the paper)')
    ap.add_argument('--max-length', type=int, default=1024, help='SFT context (1024 in the paper)')
    ap.add_argument('--corpus-repeats', type=int, default=4, help='repeat the sample corpus to fill the SFT steps')
    ap.add_argument('--dpo-steps', type=int, default=4)
    ap.add_argument('--gen-batch', type=int, default=64, help='questions generated together')
    ap.add_argument('--update-settings', type=Path, metavar='RESULTS_JSON',
                    help='write the throughputs of a GPU results file into settings.ini [throughput], then stop')
    ap.add_argument('--settings', type=Path, default=None, help='the settings file to update (default: the project\'s)')
    args = ap.parse_args(argv)
    if args.update_settings:
        path = find_settings(args.settings)
        for k, v in update_settings(args.update_settings, path).items(): print(f'{path} [throughput] {k} = {v}')
        return
    args.new_tokens = dict(PUBLISHED_MEDIAN_TOKENS)
    if args.quick or args.shape == 'tiny':
        args.shape = 'tiny'
        if args.out == RESULTS/'gpu.json': args.out = RESULTS/'gpu_tiny.json'     # never mistaken for a GPU run
        if args.quick: args.steps, args.max_length, args.corpus_repeats, args.dpo_steps, args.gen_batch = 3, 128, 1, 2, 4
        if args.quick: args.new_tokens = {'straight': 4, 'cot': 6}
    load_start = os.getloadavg()
    datasets.disable_progress_bars(); transformers.logging.set_verbosity_error()
    record, line = measure(args)
    for row in record['projection']:
        if row['prices'] == 'gpu_prices': print(row['text'])
    finish('gpu', line, record, args, load_start)


if __name__ == '__main__':
    main()
