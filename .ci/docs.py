"""Build the course site: every notebook executed on the tiny profile, then rendered by nbdev-docs.

    python .ci/docs.py                  # -> _docs/ (open _docs/index.html)
    python .ci/docs.py --out DIR        # the site somewhere else

The notebooks are stored without outputs, so the site is built in a temporary copy of the files git tracks (what a
fresh clone holds): `nbdev-test --save` executes every notebook there, one after the other in the course's order,
with its default parameters (the `tiny` profile; the chapters' run folder is `runs/tiny` inside the copy), offline,
and keeps the outputs; then `nbdev-docs` renders the copy with Quarto, which the `docs` extra installs
(`pip install -e ".[docs]"`: the quarto-cli package). Nothing is downloaded while it runs, and the repository is left
as it was but for the site folder. `--work DIR` keeps the executed copy in DIR (a second run with the same DIR
renders it again without executing); `--no-render` stops after executing.
"""
from __future__ import annotations
import argparse, os, shutil, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
OFFLINE = dict(OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', TOKENIZERS_PARALLELISM='false', HF_HUB_OFFLINE='1',
               HF_DATASETS_OFFLINE='1', TRANSFORMERS_OFFLINE='1', MPLBACKEND='Agg')
EXECUTED = '.executed'   # marks a work folder whose notebooks hold their outputs


def environment() -> dict:
    "The build's environment: offline, one thread, this Python's scripts (nbdev, quarto) first on PATH."
    return {**os.environ, **OFFLINE, 'PATH': f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def find_quarto(env: dict) -> str | None:
    "The quarto executable on the build's PATH, or None (nbdev-docs would then try to download and install one)."
    return shutil.which('quarto', path=env['PATH'])


def copy_tracked(dest: Path) -> set[str]:
    "Copy the files git tracks (and new ones it does not ignore) into `dest`, as a fresh clone would hold them; their paths."
    files = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard', '-z'], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split('\0')
    copied = {f for f in files if f and (ROOT/f).is_file()}
    for f in copied:
        (dest/f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT/f, dest/f)
    return copied


def remove_new(folder: Path, root: Path, keep: set[str]):
    "Delete what running the notebooks added under `folder` (the chapters' run folder), so only the notebooks are rendered."
    for p in sorted(folder.iterdir()):
        if p.is_dir() and not any(k.startswith(f'{p.relative_to(root).as_posix()}/') for k in keep): shutil.rmtree(p)
        elif p.is_dir(): remove_new(p, root, keep)
        elif p.relative_to(root).as_posix() not in keep: p.unlink()


def run(cmd: list, cwd: Path, env: dict):
    "Run `cmd` in `cwd`, echoing it and how long it took; stop the build if it fails."
    print('$', ' '.join(map(str, cmd)), flush=True)
    t0 = time.time()
    r = subprocess.run(cmd, cwd=cwd, env=env)
    if r.returncode: raise SystemExit(f"{cmd[0]} failed with status {r.returncode} in {cwd}")
    print(f'  {time.time() - t0:.0f} s', flush=True)


def execute(work: Path, env: dict):
    "Copy the repository into `work` and execute every notebook there in order, outputs saved (nbdev-test --save)."
    if (work/EXECUTED).exists(): return print(f'{work} already holds the executed notebooks')
    copied = copy_tracked(work)
    run([BIN/'nbdev-test', '--n-workers', '0', '--save', '--do-print', '--timing'], work, env)
    remove_new(work/'nbs', work, copied)
    (work/EXECUTED).write_text('executed by .ci/docs.py\n')


def render(work: Path, out: Path, env: dict):
    "Render the executed copy with nbdev-docs and move its `_docs` to `out`."
    run([BIN/'nbdev-docs'], work, env)
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(work/'_docs'), str(out))


def main(argv=None) -> int:
    "Build the site (see the module's docstring)."
    ap = argparse.ArgumentParser(prog='python .ci/docs.py', description=__doc__.split('\n')[0])
    ap.add_argument('--out', type=Path, default=ROOT/'_docs', help='where the site goes (default: _docs in the clone)')
    ap.add_argument('--work', type=Path, default=None, help='keep the executed copy here (default: a temporary folder)')
    ap.add_argument('--no-render', action='store_true', help='only execute the notebooks (into --work)')
    args = ap.parse_args(argv)
    env = environment()
    if not args.no_render and find_quarto(env) is None:
        print('quarto not found: install the docs extra (pip install -e ".[docs]", the quarto-cli package)', file=sys.stderr)
        return 3
    with tempfile.TemporaryDirectory(prefix='gaokerena-docs-') as tmp:
        work = (args.work or Path(tmp)/'clone').resolve()
        t0 = time.time()
        execute(work, env)
        if not args.no_render: render(work, args.out.resolve(), env)
        print(f"{'executed' if args.no_render else 'built ' + str(args.out)} in {time.time() - t0:.0f} s")
    return 0


if __name__ == '__main__': sys.exit(main())
