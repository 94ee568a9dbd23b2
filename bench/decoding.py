#!/usr/bin/env python
"""Decoding speed on the tiny profile's model: the kit's hand-written decoding pieces (gaokerena.generation.generate:
`fast_decoding`'s grouped attention and padding mask, `BufferedLayer`'s preallocated cache) against transformers' own
options. Arms, on the same left-padded chat prompts of real benchmark questions, greedy, a fixed number of new tokens:
one prompt at a time with `model.generate` (transformers' defaults), a batch with `model.generate` (the default dynamic
cache), a batch with `cache_implementation="static"`, and a batch through the kit's `generate`. Arms run back to back
in each round; ratios are the medians of the rounds' paired ratios (tokens/s against one prompt at a time)."""
from __future__ import annotations
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch
from _common import measure_in_temp, median_ratio, parser, timed
from eval_throughput import PUBLISHED_MEDIAN_TOKENS, benchmark_questions
from gaokerena.config import run_context
from gaokerena.evaluate import render_prompt
from gaokerena.generation import encode_chat, generate
from gaokerena.models import load_model_and_tokenizer


def library_generate(model, tokenizer, prompts: list[str], max_new_tokens: int, **kw) -> list[str]:
    "Greedy `model.generate` on left-padded chat prompts with transformers' own cache (`kw` picks it), decoded like the kit's."
    enc = encode_chat(tokenizer, prompts).to(model.device)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id, **kw)
    return tokenizer.batch_decode(out[:, enc['input_ids'].shape[1]:], skip_special_tokens=True)


def arms(model, tokenizer, batch_size: int) -> dict:
    "name -> function(prompts, max_new_tokens) giving the generated texts."
    def batched(fn):
        return lambda ps, n: [t for i in range(0, len(ps), batch_size) for t in fn(ps[i:i + batch_size], n)]
    return {
        'sequential': lambda ps, n: [library_generate(model, tokenizer, [p], n)[0] for p in ps],
        'batched_dynamic': batched(lambda ps, n: library_generate(model, tokenizer, ps, n)),
        'batched_static': batched(lambda ps, n: library_generate(model, tokenizer, ps, n, cache_implementation='static')),
        'batched_fast_decoding': batched(lambda ps, n: generate(model, tokenizer, ps, n)),
    }


def measure(args, run_dir: str) -> tuple[dict, dict]:
    "Time every arm in rounds; returns (ratios, record)."
    ctx = run_context('tiny', run_dir)
    model, tokenizer = load_model_and_tokenizer(ctx)
    model.eval()
    questions, source = benchmark_questions(args.questions, ctx.settings.eval.seed)
    prompts, n = [render_prompt(q) for q in questions], args.max_new_tokens
    fns = arms(model, tokenizer, args.batch_size)
    texts = {name: fn(prompts[:2], 4) for name, fn in fns.items()}              # warm-up, not timed
    if len({tuple(t) for t in texts.values()}) != 1: raise RuntimeError(f"greedy arms disagree: {texts}")
    times = {name: [] for name in fns}
    for r in range(args.rounds):
        for name, fn in fns.items():
            _, seconds = timed(fn, prompts, n)
            times[name].append(seconds)
            print(f'round {r + 1}/{args.rounds} {name}: {seconds:.2f} s', flush=True)
    tokens = len(prompts) * n
    tokens_per_s = {name: tokens * len(ts) / sum(ts) for name, ts in times.items()}
    for name, v in tokens_per_s.items(): print(f'{name}: {v:.0f} tokens/s')
    ratios = {f'{name}_vs_sequential': median_ratio(times['sequential'], times[name]) for name in fns if name != 'sequential'}
    ratios['fast_vs_static'] = median_ratio(times['batched_static'], times['batched_fast_decoding'])
    ratios['fast_vs_dynamic'] = median_ratio(times['batched_dynamic'], times['batched_fast_decoding'])
    record = dict(model='tiny (settings.ini [profile:tiny])', questions_from=source, new_tokens=n, tokens_per_arm=tokens,
                  seconds=times, tokens_per_s=tokens_per_s)
    return ratios, record


def main(argv=None):
    ap = parser('decoding', __doc__)
    ap.add_argument('--questions', type=int, default=64, help='prompts per arm')
    ap.add_argument('--batch-size', type=int, default=32, help="the batch bench/eval_throughput.py found fastest")
    ap.add_argument('--max-new-tokens', type=int, default=PUBLISHED_MEDIAN_TOKENS['straight'],
                    help='new tokens per prompt (default: the median length of the published straight answers)')
    ap.add_argument('--rounds', type=int, default=3)
    args = ap.parse_args(argv)
    if args.quick: args.questions, args.batch_size, args.max_new_tokens, args.rounds = 4, 2, 4, 1
    measure_in_temp('decoding', measure, args)


if __name__ == '__main__':
    main()
