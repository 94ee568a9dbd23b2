#!/usr/bin/env python
"""Wall time of `gaokerena run --profile tiny` (the whole course, offline, on CPU) into a fresh run folder: in total
(the command as a user runs it: start-up, the five chapters under papermill, the summary and the report) and per
notebook (from the run's `notebooks/*.done.json` markers), with each stage's time from the run's ledger."""
from __future__ import annotations
import json, os, shutil, subprocess, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import finish, parser
from gaokerena.config import CHAPTERS
from gaokerena.ledger import read_ledger


def main(argv=None):
    ap = parser('pipeline', __doc__)
    ap.add_argument('--only', action='append', default=None, help='run only this chapter (repeatable); default all five')
    ap.add_argument('--keep', type=Path, default=None, help='keep the run folder here instead of deleting it')
    args = ap.parse_args(argv)
    if args.quick: args.only = args.only or ['00_data']
    load_start = os.getloadavg()
    run_dir = Path(tempfile.mkdtemp(prefix='bench-pipeline-'))
    cli = Path(sys.executable).with_name('gaokerena')
    cmd = [str(cli) if cli.exists() else 'gaokerena', 'run', '--profile', 'tiny', '--run-dir', str(run_dir), '--force']
    for ch in args.only or []: cmd += ['--only', ch]
    print('$', ' '.join(cmd), flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    total = time.perf_counter() - t0
    if proc.returncode:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f'gaokerena run failed with exit code {proc.returncode} (run folder kept: {run_dir})')
    chapters = {}
    for ch in CHAPTERS:
        marker = run_dir/'notebooks'/f'{ch}.done.json'
        if marker.exists(): chapters[ch] = json.loads(marker.read_text())['wall_s']
    ledger = read_ledger(run_dir)
    stages = {r.stage: r.wall_s for r in ledger.itertuples()}
    for ch, s in chapters.items(): print(f'{ch}: {s:.1f} s')
    if args.keep:
        shutil.rmtree(args.keep, ignore_errors=True)
        shutil.move(str(run_dir), args.keep)
    else: shutil.rmtree(run_dir, ignore_errors=True)
    record = dict(command_run=' '.join(cmd[1:]), chapters_s=chapters, chapters_total_s=sum(chapters.values()),
                  outside_chapters_s=total - sum(chapters.values()), stages_s=stages)
    finish('pipeline', dict(pipeline_s=total), record, args, load_start)


if __name__ == '__main__':
    main()
