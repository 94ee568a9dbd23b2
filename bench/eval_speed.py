"""Questions per second of log-likelihood scoring vs generation on the tiny model (CPU), measured in one run.

    OMP_NUM_THREADS=1 python bench/eval_speed.py [--questions 96] [--new-tokens 24 128]

Prints both rates and their ratio for each generation length. A rough guide to the ratio only: the
tiny model is random, so its generations never stop early, and an 8B model on a GPU has other costs.
"""
import argparse, tempfile, time
from pathlib import Path
import torch
from gaokerena.data import load_sample
from gaokerena.evaluate import ResultStore, evaluate_mcq
from gaokerena.models import build_tiny_model, build_tokenizer, sample_texts


def rate(questions, **kw) -> float:
    "Questions per second of one fresh evaluation."
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        evaluate_mcq(store=ResultStore(Path(d)/'r.jsonl'), questions=questions, **kw)
        return len(questions) / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--questions', type=int, default=96)
    ap.add_argument('--new-tokens', type=int, nargs='+', default=[24, 128])
    ap.add_argument('--batch-size', type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(1)
    tok = build_tokenizer(sample_texts(), 3000)
    model = build_tiny_model(tok, 64).eval()
    qs = load_sample('mcq')[:args.questions]
    common = dict(model=model, tokenizer=tok, model_name='tiny', benchmark='bench', batch_size=args.batch_size)
    rate(qs[:8], mode='loglik', **common)
    ll = rate(qs, mode='loglik', **common)
    print(f'{len(qs)} questions, batch {args.batch_size}, 1 thread')
    print(f'log-likelihood: {ll:8.1f} questions/s')
    for n in args.new_tokens:
        g = rate(qs, mode='generate', max_new_tokens=n, **common)
        print(f'generation ({n:4d} new tokens): {g:8.1f} questions/s  -> log-likelihood is {ll / g:5.1f}x faster')


if __name__ == '__main__':
    main()
