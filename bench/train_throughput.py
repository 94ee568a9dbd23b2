#!/usr/bin/env python
"""Training throughput on the tiny model with the papers' batch (2) and context (1024): real tokens per second and
the share of padding in the batches, padded vs packed, for forum Q&A (MF3QA: the real files when the data is present,
the bundled sample otherwise) and for corpus text (the bundled sample: the corpus is a separate 757 MB download); and the
time of one DPO step with the paper's batch (1 x 4) and pair lengths, with the trainer and loop of
gaokerena.rounds.train_dpo (`dpo_trainer`, `train_stage`).

Q&A, padded: the package's stage 2 (`instruct_config`: one conversation per row, padded to the batch's longest, as the
authors trained). Q&A, packed: the same with trl's best-fit-decreasing packing (`packing_strategy='bfd'`, padding-free
rows, conversations kept whole) -- an option the package does not use yet. Corpus, padded: one article per row, cut
into `max_length` pieces as the authors' tokenizer did. Corpus, packed: the package's stage 1 (`pack_blocks`).
Arms run back to back in each round; ratios are medians of the rounds' paired ratios."""
from __future__ import annotations
import dataclasses, statistics, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, data_dir, measure_in_temp, median_ratio, parser, reset_peak
import datasets, transformers
from datasets import Dataset
from transformers import TrainerCallback
from gaokerena.config import load_settings, run_context
from gaokerena.sources import load_rows
from gaokerena.evaluate import render_prompt
from gaokerena.models import load_model_and_tokenizer
from gaokerena.ledger import peak_memory_gb
from gaokerena.rlaif import dpo_rows
from gaokerena.rounds import dpo_trainer, fit_rows
from gaokerena.stores import fingerprint, keyed_folder
from gaokerena.sft import chat_dataset, pack_blocks, padding_share, tokenize_documents
from gaokerena.stages import instruct_config, make_trainer, pretrain_config, stage_spec, train_stage


# The paper's DPO pairs average ~2M chosen and ~2.5M rejected tokens over ~11k pairs.
PAPER_PAIR_TOKENS = {'chosen': 182, 'rejected': 227}


class StepClock(TrainerCallback):
    "Wall time and non-padding input tokens at the end of every optimizer step."
    def __init__(self): self.marks = []
    def on_step_end(self, args, state, control, **kw): self.marks.append((time.perf_counter(), state.num_input_tokens_seen))

    def rate(self) -> tuple[float, int, float]:
        "(seconds, tokens, tokens/s) over every step but the first (which pays for warm-up)."
        (t0, n0), (t1, n1) = self.marks[0], self.marks[-1]
        return t1 - t0, n1 - n0, (n1 - n0) / (t1 - t0)


def corpus_chunks(docs: Dataset, max_length: int) -> Dataset:
    "One row per `max_length` piece of each document: the authors' per-article rows (their tokenizer's overflow)."
    return Dataset.from_dict({'input_ids': [ids[i:i + max_length] for ids in docs['input_ids']
                                            for i in range(0, len(ids), max_length)]})


def batch_padding(trainer, n_batches: int) -> float:
    "Share of padding positions in the trainer's first `n_batches` collated batches (padding-free rows: pad tokens)."
    pad, batches = trainer.processing_class.pad_token_id, []
    for i, b in enumerate(trainer.get_train_dataloader()):
        if i == n_batches: break
        batches.append(b if 'attention_mask' in b else {'attention_mask': (b['input_ids'] != pad).long()})
    return padding_share(batches)


def qa_rows(seed: int) -> tuple[list[dict], str]:
    "Forum Q&A rows: MF3QA dev + test when the data is present (copies without large files lack train.xlsx), else the bundled sample."
    where = data_dir()
    names = ('mf3qa/dev', 'mf3qa/test') if where else ('mf3qa/train', 'mf3qa/test')
    rows = [r for n in names for r in load_rows(n, where).rows]
    return rows, f"{' + '.join(names)} from {DATA if where else 'the bundled sample'}"


def pair_rows() -> tuple[list[dict], str]:
    "Preference pairs: the authors' published pairs when present, else stand-ins built from the sample's questions."
    where = data_dir()
    if where: return load_rows('pairs/published', where).rows, f'pairs/published from {DATA}'
    mcq = load_rows('mmlu/anatomy').rows + load_rows('ibmsee').rows
    pairs = [{'prompt': render_prompt(q, 'cot'), 'chosen': q['explanation'] + f"\nپاسخ صحیح: [{q['gold']}]",
              'rejected': mcq[i - 1]['explanation'] + f"\nپاسخ صحیح: [{mcq[i - 1]['gold']}]"} for i, q in enumerate(mcq)]
    return pairs, 'stand-ins from the bundled sample questions (explanation of the question vs of another)'


def paper_sized_pairs(pairs: list[dict], tokenizer, n: int) -> list[dict]:
    "`n` pairs whose chosen and rejected answers are cut to the paper's mean token counts (prompts kept whole)."
    def ids(text): return tokenizer(text, add_special_tokens=False)['input_ids']
    pairs = pairs[:50 * n]
    long = [p for p in pairs if all(len(ids(p[k])) >= v for k, v in PAPER_PAIR_TOKENS.items())] or pairs
    return [{**p, **{k: tokenizer.decode(ids(p[k])[:v]) for k, v in PAPER_PAIR_TOKENS.items()}} for p in (long * n)[:n]]


def dpo_arm(ctx, pairs: list[dict], device: str) -> dict:
    "Seconds per DPO optimizer step, pairs/s and tokens/s with the run's [dpo] settings (train_dpo's trainer and loop)."
    s = ctx.settings
    per_step = s.dpo.per_device_train_batch_size * s.dpo.gradient_accumulation_steps
    model, tokenizer = load_model_and_tokenizer(ctx)
    rows, fit = fit_rows(dpo_rows(paper_sized_pairs(pairs, tokenizer, s.dpo.max_steps * per_step)), tokenizer, s.dpo.max_length)
    reset_peak(device)
    clock = StepClock()
    out = keyed_folder(ctx.run_dir/'dpo', stage_spec(s.dpo, s, {'model': s.profile.model_id}, fingerprint(rows)))   # train_stage's folder
    trainer = dpo_trainer(model, tokenizer, rows, s, out)
    trainer.add_callback(clock)
    train_stage(trainer)
    sec, tokens, rate = clock.rate()
    steps = len(clock.marks) - 1
    return dict(step_s=sec / steps, pairs_per_s=steps * per_step / sec, tokens_per_s=rate, steps=len(clock.marks),
                pairs=len(rows), fit=fit, peak_memory_gb=peak_memory_gb(device),
                batch=f'{s.dpo.per_device_train_batch_size} x {s.dpo.gradient_accumulation_steps}', max_length=s.dpo.max_length)


def measure(args, work: Path) -> tuple[dict, dict]:
    "Time every arm in rounds, then the DPO steps; returns (ratios, record)."
    common = {'per_device_train_batch_size': args.batch_size, 'gradient_accumulation_steps': 1, 'max_length': args.max_length,
              'max_steps': args.steps, 'logging_steps': 1, 'save_steps': 10 * args.steps}
    overrides = {f'{stage}.{k}': v for stage in ('pretrain', 'instruct') for k, v in common.items()}
    dpo_paper = ('per_device_train_batch_size', 'gradient_accumulation_steps', 'max_length')   # 1 x 4 pairs, 2048 tokens
    overrides.update({f'dpo.{k}': getattr(load_settings('h100').dpo, k) for k in dpo_paper})
    overrides.update({'dpo.max_steps': args.dpo_steps, 'dpo.save_steps': 10 * args.dpo_steps, 'dpo.logging_steps': 1})
    ctx = run_context('tiny', work/'run', overrides=overrides)
    s = ctx.settings
    _, tokenizer = load_model_and_tokenizer(ctx)
    qa, qa_from = qa_rows(s.instruct.seed)
    docs = tokenize_documents(load_rows('corpus').rows, tokenizer)

    def instruct(packed: bool):
        config = instruct_config(s, work/'out')
        return dataclasses.replace(config, packing=packed, packing_strategy='bfd', padding_free=packed)
    arms = {
        'qa_padded': (chat_dataset(qa), lambda: instruct(False), s.instruct),
        'qa_packed': (chat_dataset(qa), lambda: instruct(True), s.instruct),
        'corpus_padded': (corpus_chunks(docs, args.max_length), lambda: pretrain_config(s, work/'out'), s.pretrain),
        'corpus_packed': (pack_blocks(docs, args.max_length), lambda: pretrain_config(s, work/'out'), s.pretrain),
    }
    times, tokens, per_s, padding = ({k: [] for k in arms} for _ in range(4))
    for r in range(args.rounds):
        for name, (data, config, stage) in arms.items():
            model, _ = load_model_and_tokenizer(ctx)
            clock = StepClock()
            trainer = make_trainer(model, tokenizer, data, config(), stage, s, callbacks=[clock])
            if r == 0: padding[name] = batch_padding(trainer, 64)
            trainer.train()
            sec, tok, rate = clock.rate()
            times[name].append(sec); tokens[name].append(tok); per_s[name].append(rate)
            print(f'round {r + 1}/{args.rounds} {name}: {rate:,.0f} tokens/s ({tok:,} tokens in {sec:.2f} s), '
                  f'padding {padding[name]:.1%}', flush=True)
    pairs, pairs_from = pair_rows()
    dpo = {**dpo_arm(ctx, pairs, 'cpu'), 'pairs_from': pairs_from}
    rate = {k: statistics.median(v) for k, v in per_s.items()}
    print(f"DPO: {dpo['step_s']:.2f} s per optimizer step ({s.dpo.per_device_train_batch_size} x "
          f"{s.dpo.gradient_accumulation_steps} pairs, max_length {s.dpo.max_length})")
    ratios = dict(packed_vs_padded=median_ratio(per_s['qa_packed'], per_s['qa_padded']),
                  padding_share_padded=padding['qa_padded'], padding_share_packed=padding['qa_packed'],
                  corpus_packed_vs_padded=median_ratio(per_s['corpus_packed'], per_s['corpus_padded']),
                  corpus_padding_share_padded=padding['corpus_padded'], corpus_padding_share_packed=padding['corpus_packed'],
                  dpo_step_s=dpo['step_s'])
    record = dict(model='tiny (settings.ini [profile:tiny])', qa_from=qa_from, corpus_from='the bundled sample corpus',
                  tokens_per_s=rate, raw=dict(seconds=times, tokens=tokens, tokens_per_s=per_s),
                  padding_share=padding, dpo=dpo)
    return ratios, record


def main(argv=None):
    ap = parser('train_throughput', __doc__)
    ap.add_argument('--max-length', type=int, default=1024, help='context length (1024 in the paper)')
    ap.add_argument('--batch-size', type=int, default=2, help='rows per step (2 in the paper)')
    ap.add_argument('--steps', type=int, default=40, help='optimizer steps timed per arm (the first is not counted)')
    ap.add_argument('--dpo-steps', type=int, default=8, help='DPO optimizer steps (batch 1 x 4 as the paper)')
    ap.add_argument('--rounds', type=int, default=3)
    args = ap.parse_args(argv)
    if args.quick: args.max_length, args.steps, args.dpo_steps, args.rounds = 512, 3, 2, 1
    datasets.disable_progress_bars(); transformers.logging.set_verbosity_error()
    measure_in_temp('train_throughput', measure, args)


if __name__ == '__main__':
    main()
