#!/usr/bin/env python
"""`gaokerena reproduce`'s row matching (`gaokerena.reproduce.align_rows`): difflib on every candidate (the old way,
`screen=False`) against rapidfuzz's screen first (`screen=True`), on the same sheets, with the same matches asserted;
then the wall time of `gaokerena reproduce --answers labels` on the authors' data, as a user runs it.

The sheets whose rows made the old matching slow (three benchmarks' published outputs) are held back from the course
data, so the matching arms run on stand-ins built from the real benchmark questions: each benchmark's questions as a
sheet that skips the first question (every position is off by one) and holds an older wording of every question and
option (every seventh word dropped, every eleventh pair of words swapped: about 85% similar). No row then matches
exactly, by position or by its options: each goes to the fuzzy search over every free question."""
from __future__ import annotations
import os, subprocess, sys, tempfile, time
from pathlib import Path
import pandas as pd
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import data_dir, finish, median_ratio, parser, timed
from gaokerena.rows import LETTERS
from gaokerena.sources import load_rows
from gaokerena.reproduce import align_rows, benchmark_name

HELD_BACK = ('medical_genetics', 'college_medicine', 'professional_medicine')   # their published sheets are not in the course data


def reword(text: str) -> str:
    "An older wording of `text`: every seventh word dropped and every eleventh pair of words swapped."
    words = [w for i, w in enumerate(text.split()) if i % 7 != 6]
    for i in range(0, len(words) - 1, 11): words[i], words[i + 1] = words[i + 1], words[i]
    return ' '.join(words)


def stand_in_sheet(bench: list[dict]) -> pd.DataFrame:
    "A sheet of `bench` that skips its first question and words every other question and option differently."
    return pd.DataFrame([{'question': reword(b['question']), 'options': {k: reword(b['options'][k]) for k in LETTERS}}
                         for b in bench[1:]])


def benchmarks(quick: bool, root) -> dict:
    "{name: questions} the matching arms run on: the held-back benchmarks (quick: 40 of medical genetics), from the bundled sample without the data."
    names = HELD_BACK[:1] if quick else HELD_BACK
    return {b: load_rows(benchmark_name(b), root or 'sample').rows[:40 if quick else None] for b in names}


def main(argv=None):
    ap = parser('reproduce', __doc__)
    ap.add_argument('--rounds', type=int, default=None, help='rounds of both matching arms (default 2; quick 2)')
    args = ap.parse_args(argv)
    args.rounds = args.rounds or 2
    load_start = os.getloadavg()
    root = data_dir()
    sheets = {b: (stand_in_sheet(rows), rows) for b, rows in benchmarks(args.quick, root).items()}
    seconds = {'difflib': [], 'screened': []}
    matched = {}
    for r in range(args.rounds):
        for arm, screen in (('difflib', False), ('screened', True)):
            t = 0.0
            for b, (sheet, rows) in sheets.items():
                al, dt = timed(align_rows, sheet, rows, screen=screen)
                t += dt
                got = (al.bench_index.tolist(), al.how.tolist())
                if matched.setdefault(b, got) != got: raise SystemExit(f'{b}: the screened matching differs from difflib alone')
            seconds[arm].append(t)
            print(f'round {r + 1}: {arm} {t:.2f} s', flush=True)
    how = {b: pd.Series(m[1]).value_counts().to_dict() for b, m in matched.items()}
    right = {b: sum(j == i + 1 for i, j in enumerate(m[0])) for b, m in matched.items()}   # row i holds question i + 1
    print('matches:', how, 'right question:', right)
    ratios = dict(screen_speedup=median_ratio(seconds['difflib'], seconds['screened']))
    record = dict(sheets={b: len(s) for b, (s, _) in sheets.items()}, matched_how=how, matched_right=right,
                  seconds=seconds, data='authors' if root else 'sample')
    if root is not None and not args.quick:
        cli = Path(sys.executable).with_name('gaokerena')
        with tempfile.TemporaryDirectory() as out:
            cmd = [str(cli) if cli.exists() else 'gaokerena', 'reproduce', '--data-dir', str(root), '--answers', 'labels', '--out', out]
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            ratios['reproduce_labels_s'] = record['reproduce_labels_s'] = time.perf_counter() - t0
        record['command_run'] = 'reproduce --data-dir $GAOKERENA_DATA_DIR --answers labels'
    finish('reproduce', ratios, record, args, load_start)


if __name__ == '__main__':
    main()
