#!/usr/bin/env python
"""Evaluation throughput on the tiny model, through gaokerena.evalrun.evaluate_mcq: straight questions answered one
at a time with generation (the papers' way) vs batched generation (evaluate_mcq batches questions of similar prompt
length) vs log-likelihood scoring of the option letters, and chain-of-thought samples one at a time vs batched. New
tokens per answer: the median length of the authors' published generations. Arms run back to back in each round;
ratios are the medians of the rounds' paired ratios. vLLM is timed too where it is installed on a GPU."""
from __future__ import annotations
import random, statistics, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, data_dir, measure_in_temp, median_ratio, parser, timed
from gaokerena.config import run_context
from gaokerena.sources import BENCHMARKS, SUBJECTS, load_rows
from gaokerena.evalrun import evaluate_mcq
from gaokerena.results import ResultStore
from gaokerena.generation import make_generator, vllm_available
from gaokerena.models import ModelRecipe, load_model_and_tokenizer

# Median length, in the tiny tokenizer's tokens, of the authors' published generations of the papers' own models
# (aya-expanse-8b, gaokerena-v, gaokerena-r): straight answers and CoT samples. `published_lengths` measures them from
# the data when it is present; these are the values it gave.
PUBLISHED_MEDIAN_TOKENS = {'straight': 217, 'cot': 499}
PAPER_MODELS = ('aya-expanse-8b', 'gaokerena-v', 'gaokerena-r')


def benchmark_questions(n: int, seed: int) -> tuple[list[dict], str]:
    "`n` questions drawn (seeded) from the papers' seven benchmarks: the real ones when the data is present, else the sample."
    where = data_dir()
    rows = [r for b in BENCHMARKS for r in load_rows(f'mmlu/{b}' if b in SUBJECTS else b, where).rows]
    random.Random(seed).shuffle(rows)
    if len(rows) < n: raise SystemExit(f'only {len(rows)} benchmark questions available, asked for {n}')
    return rows[:n], DATA if where else 'bundled sample'


def published_lengths(tokenizer) -> tuple[dict, str]:
    "Median token length of the papers' models' published straight answers and first CoT runs (`PUBLISHED_MEDIAN_TOKENS` without the data)."
    where = data_dir()
    if where is None: return dict(PUBLISHED_MEDIAN_TOKENS), 'PUBLISHED_MEDIAN_TOKENS (no data folder)'
    from gaokerena.sheets import published_sheets, read_output_sheet
    sheets, out = published_sheets(where), {}
    for style in PUBLISHED_MEDIAN_TOKENS:
        keep = (sheets['style'] == style) & sheets['model'].isin(PAPER_MODELS) & sheets['run'].fillna(1).eq(1)
        paths = sheets[keep]['path']
        texts = [g for p in paths for g in read_output_sheet(p)['generation'] if isinstance(g, str) and g.strip()]
        out[style] = int(statistics.median(len(ids) for ids in tokenizer(texts, add_special_tokens=False, verbose=False)['input_ids']))
    return out, f'published output sheets in {DATA}'


def time_arm(model, tokenizer, questions: list[dict], **kw) -> tuple[float, float]:
    "(wall, CPU) seconds `evaluate_mcq` takes for `questions` into a fresh result store (prompts, model, extraction, store)."
    with tempfile.TemporaryDirectory() as d:
        cpu = time.process_time()
        rows, seconds = timed(evaluate_mcq, model, tokenizer, questions, ResultStore(Path(d)/'results.jsonl'),
                              'tiny', 'bench', **kw)
        cpu = time.process_time() - cpu
    expected = len(questions) * kw.get('samples', 1)
    if len(rows) != expected: raise RuntimeError(f"evaluate_mcq returned {len(rows)} rows, expected {expected}")
    return seconds, cpu


def measure(args, run_dir: str) -> tuple[dict, dict]:
    "Time every arm in rounds; returns (ratios, record)."
    ctx = run_context('tiny', run_dir)
    model, tokenizer = load_model_and_tokenizer(ctx)
    model.eval()
    lengths_from = 'command line'
    if args.max_new_tokens is None or args.cot_max_new_tokens is None:
        lengths, lengths_from = published_lengths(tokenizer)
        args.max_new_tokens = args.max_new_tokens or lengths['straight']
        args.cot_max_new_tokens = args.cot_max_new_tokens or lengths['cot']
    questions, source = benchmark_questions(args.questions, ctx.settings.eval.seed)
    cot_questions = questions[:args.cot_questions]
    straight = dict(style='straight', max_new_tokens=args.max_new_tokens, temperature=ctx.settings.eval.straight_temperature)
    cot = dict(mode='generate', style='cot', samples=args.cot_samples, temperature=ctx.settings.eval.cot_temperature,
               max_new_tokens=args.cot_max_new_tokens)
    arms = {
        'straight_sequential': (questions, dict(mode='generate', batch_size=1, **straight)),
        'straight_batched': (questions, dict(mode='generate', batch_size=args.batch_size, **straight)),
        'loglik': (questions, dict(mode='loglik', batch_size=args.batch_size, style='straight')),
        'cot_sequential': (cot_questions, dict(batch_size=1, **cot)),
        'cot_batched': (cot_questions, dict(batch_size=args.batch_size, **cot)),
    }
    if vllm_available():      # vLLM on the GPU (the other arms run on the CPU): it takes each arm's questions at once
        # an engine in its own process serving the tiny base (the transformers model stays on the CPU); closed below
        vllm = make_generator(run_context('tiny', run_dir, overrides={'profile.use_vllm': 'true'}), ModelRecipe('tiny'))
        arms['straight_vllm'] = (questions, dict(mode='generate', batch_size=len(questions), generator=vllm, **straight))
        arms['cot_vllm'] = (cot_questions, dict(batch_size=len(cot_questions) * args.cot_samples, generator=vllm, **cot))
    for qs, kw in arms.values(): time_arm(model, tokenizer, qs[:2], **{**kw, 'samples': 1})   # warm-up, not timed
    times, cpu = {name: [] for name in arms}, {name: [] for name in arms}
    for r in range(args.rounds):
        for name, (qs, kw) in arms.items():
            wall, c = time_arm(model, tokenizer, qs, **kw)
            times[name].append(wall); cpu[name].append(c)
            print(f'round {r + 1}/{args.rounds} {name}: {wall:.2f} s ({c:.2f} s CPU)', flush=True)
    if 'cot_vllm' in arms: vllm.close()
    units = {name: len(qs) * kw.get('samples', 1) for name, (qs, kw) in arms.items()}
    per_s = {name: units[name] * len(ts) / sum(ts) for name, ts in times.items()}
    for name, v in per_s.items(): print(f"{name}: {v:.2f} {'samples' if name.startswith('cot') else 'questions'}/s")
    ratios = dict(batched_vs_sequential=median_ratio(times['straight_sequential'], times['straight_batched']),
                  loglik_vs_sequential=median_ratio(times['straight_sequential'], times['loglik']),
                  cot_batched_vs_sequential=median_ratio(times['cot_sequential'], times['cot_batched']))
    if 'cot_vllm' in times:
        ratios.update(vllm_vs_sequential=median_ratio(times['straight_sequential'], times['straight_vllm']),
                      cot_vllm_vs_sequential=median_ratio(times['cot_sequential'], times['cot_vllm']))
    record = dict(model='tiny (settings.ini [profile:tiny])', questions_from=source, new_tokens_from=lengths_from,
                  units=units, seconds=times, cpu_seconds=cpu, units_per_s=per_s,
                  vllm='timed (on the GPU)' if 'cot_vllm' in times else 'not installed or no GPU: not timed')
    return ratios, record


def main(argv=None):
    ap = parser('eval_throughput', __doc__)
    ap.add_argument('--questions', type=int, default=64, help='straight questions per arm')
    ap.add_argument('--cot-questions', type=int, default=16, help='questions for the CoT arms (each sampled --cot-samples times)')
    ap.add_argument('--cot-samples', type=int, default=5, help='CoT samples per question (5 in Gaokerena-R)')
    ap.add_argument('--batch-size', type=int, default=32, help='32 was the fastest of 8/16/32/64 on 2 cores')
    ap.add_argument('--max-new-tokens', type=int, default=None,
                    help='tokens per straight answer (default: the median length of the published answers)')
    ap.add_argument('--cot-max-new-tokens', type=int, default=None,
                    help='tokens per CoT sample (default: the median length of the published CoT samples)')
    ap.add_argument('--rounds', type=int, default=3)
    args = ap.parse_args(argv)
    if args.quick:
        args.questions, args.cot_questions, args.cot_samples, args.batch_size = 6, 2, 2, 4
        args.max_new_tokens, args.cot_max_new_tokens, args.rounds = 4, 4, 1
    measure_in_temp('eval_throughput', measure, args)


if __name__ == '__main__':
    main()
