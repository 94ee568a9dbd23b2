#!/usr/bin/env python
"""The miniature world's effects, measured through the tiny pipeline with fixed seeds: `gaokerena run --profile tiny` into a
fresh folder (timed: pipeline_s), the before/after numbers the chapters recorded (straight-prompt accuracy and format rate
before and after Phase 1, chain-of-thought self-consistency before and after RLAIF + DPO, and the Phase-1 accuracy on
trained facts, on held-out facts (only read in the corpus, never asked) and on two-fact chains apart), and the pad = EOS
demonstration: stage 2 trained again on the run's stage-1 model with the authors' pad = EOS recipe, and the share of its
greedy answers that run to max_new_tokens beside the run's own Phase-1 model."""
from __future__ import annotations
import json, os, resource, shutil, subprocess, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import finish, parser
from gaokerena.config import run_context
from gaokerena.sources import load_prepared
from gaokerena.evaluate import render_prompt
from gaokerena.stages import pad_eos_runaway

PARTS = ('trained', 'held_out', 'chain')   # the exam's questions on facts asked in training, on facts only read, on two facts

# --quick: a few steps per stage (logged, so the chapters' loss lines print) and a few questions, so the script's plumbing
# runs in a minute (its numbers mean nothing)
QUICK = {'pretrain.max_steps': 8, 'instruct.max_steps': 8, 'dpo.max_steps': 2, 'pretrain.logging_steps': 4, 'instruct.logging_steps': 4,
         'profile.eval_limit': 14, 'profile.rlaif_limit': 8}


def children_cpu_s() -> float:
    "CPU seconds (user + system) of this process's finished children: what load on a shared machine inflates far less than wall time."
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def before_after(run_dir: Path, chapter: str) -> dict:
    "The before/after table a chapter recorded: model -> its accuracy, format rate and accuracy by part."
    return json.loads((run_dir/chapter/'metrics.json').read_text())['before_after']


def main(argv=None):
    ap = parser('world', __doc__)
    ap.add_argument('--keep', type=Path, default=None, help='keep the run folder here instead of deleting it')
    ap.add_argument('--pad-questions', type=int, default=64, help='exam questions the pad = EOS demonstration generates for')
    args = ap.parse_args(argv)
    load_start = os.getloadavg()
    run_dir = Path(tempfile.mkdtemp(prefix='bench-world-'))
    sets = QUICK if args.quick else {}
    cli = Path(sys.executable).with_name('gaokerena')
    cmd = [str(cli) if cli.exists() else 'gaokerena', 'run', '--profile', 'tiny', '--run-dir', str(run_dir), '--force']
    cmd += [x for k, v in sets.items() for x in ('--set', f'{k}={v}')]
    print('$', ' '.join(cmd), flush=True)
    t0, c0 = time.perf_counter(), children_cpu_s()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    pipeline_s, pipeline_cpu_s = time.perf_counter() - t0, children_cpu_s() - c0
    if proc.returncode:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f'gaokerena run failed with exit code {proc.returncode} (run folder kept: {run_dir})')
    straight, cot = before_after(run_dir, '02_eval'), before_after(run_dir, '04_passk')
    (base, phase1), (cot_phase1, cot_dpo) = straight.values(), cot.values()
    ctx = run_context('tiny', run_dir, overrides=sets)
    prompts = [render_prompt(q) for q in load_prepared(ctx, 'mcq')[:args.pad_questions]]
    t1 = time.perf_counter()
    pad = pad_eos_runaway(ctx, prompts, ctx.settings.eval.max_new_tokens)
    pad_s = time.perf_counter() - t1
    if args.keep:
        shutil.rmtree(args.keep, ignore_errors=True)
        shutil.move(str(run_dir), args.keep)
    else: shutil.rmtree(run_dir, ignore_errors=True)
    values = dict(mcq_acc_base=base['accuracy'], mcq_acc_phase1=phase1['accuracy'], format_rate_base=base['format_rate'],
                  format_rate_phase1=phase1['format_rate'], cot_acc_phase1=cot_phase1['accuracy'], cot_acc_dpo=cot_dpo['accuracy'],
                  pad_eos_runaway=pad['pad_eos'], pad_ok_runaway=pad['pad_ok'], pipeline_s=pipeline_s)
    values |= {f'mcq_acc_phase1_{part}': phase1[f'accuracy ({part})'] for part in PARTS if f'accuracy ({part})' in phase1}
    record = dict(command_run=' '.join(cmd[1:]), pipeline_cpu_s=pipeline_cpu_s, straight=straight, cot=cot, pad_eos_demo={**pad, 'questions': len(prompts), 'seconds': pad_s},
                  targets={'mcq_acc_phase1': '>= 0.6 and >= mcq_acc_base + 0.3', 'format_rate_phase1': '>= 0.9',
                           'cot_acc_dpo': '>= cot_acc_phase1 + 0.10', 'pad_eos_runaway': '>= pad_ok_runaway + 0.5', 'pipeline_s': '< 180'})
    finish('world', values, record, args, load_start)


if __name__ == '__main__':
    main()
