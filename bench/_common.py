"What every bench script shares: the machine and its load, library versions, paired timing, the results file and the last line."
from __future__ import annotations
import argparse, importlib.metadata, json, os, platform, shutil, statistics, sys, tempfile, time
from datetime import datetime, timezone
from pathlib import Path
import torch
from gaokerena.ledger import git_commit, library_versions

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH/'results'
OPTIONAL_PACKAGES = ('accelerate', 'vllm', 'unsloth', 'bitsandbytes', 'flash_attn')


def parser(script: str, doc: str) -> argparse.ArgumentParser:
    "The command line every bench script shares: `--quick` (small sizes, for tests) and `--out` (the results file)."
    ap = argparse.ArgumentParser(prog=f'bench/{script}.py', description=doc)
    ap.add_argument('--quick', action='store_true', help='small sizes: checks the script end to end in seconds (tests)')
    ap.add_argument('--out', type=Path, default=RESULTS/f'{script}.json', help='where to write the results JSON')
    return ap


def cpu_name() -> str:
    "The CPU's model name (from /proc/cpuinfo on Linux)."
    info = Path('/proc/cpuinfo')
    if info.exists():
        for line in info.read_text().splitlines():
            if line.startswith('model name'): return line.split(':', 1)[1].strip()
    return platform.processor() or platform.machine()


def hardware() -> dict:
    "The machine the numbers were measured on: CPU, cores, torch threads, GPU (if any)."
    cuda = torch.cuda.is_available()
    return dict(platform=platform.platform(), cpu=cpu_name(), cpu_count=os.cpu_count(), torch_threads=torch.get_num_threads(),
                omp_num_threads=os.environ.get('OMP_NUM_THREADS'), device='cuda' if cuda else 'cpu',
                gpu=torch.cuda.get_device_name(0) if cuda else None,
                gpu_memory_gb=torch.cuda.get_device_properties(0).total_memory / 1e9 if cuda else None)


def versions() -> dict:
    "The ledger's tracked library versions plus the optional GPU packages (None when not installed)."
    def version(name):
        try: return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError: return None
    return {**library_versions(), **{p: version(p) for p in OPTIONAL_PACKAGES}}


DATA = "the authors' data ($GAOKERENA_DATA_DIR)"   # how results name the data folder: never a machine's path


def shown(value):
    "A setting as a results file records it: a path inside the clone relative to the clone, anything else as it is."
    if isinstance(value, Path) and value.resolve().is_relative_to(BENCH.parent): return str(value.resolve().relative_to(BENCH.parent))
    return value


def data_dir() -> Path | None:
    "The folder of the authors' repositories ($GAOKERENA_DATA_DIR, else ../shared/data), or None when absent."
    d = Path(os.environ.get('GAOKERENA_DATA_DIR') or BENCH.parent.parent/'shared'/'data')
    return d if (d/'gaokerena-v').is_dir() and (d/'gaokerena-r').is_dir() else None


def timed(fn, *args, **kwargs) -> tuple:
    "(fn's result, seconds it took on the wall clock)."
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def reset_peak(device: str):
    "Start a new peak-memory measurement (GPU allocator; on CPU the process's peak RSS cannot be reset)."
    if device == 'cuda': torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()


def median_ratio(a: list[float], b: list[float]) -> float:
    "Median over rounds of a/b, each pair measured back to back, so load that drifts between rounds cancels out."
    return statistics.median(x / y for x, y in zip(a, b))


def finish(script: str, ratios: dict, record: dict, args: argparse.Namespace, load_start: tuple) -> dict:
    "Write the results JSON (machine, load, versions, the arguments, raw timings) and print the ratios as the last line."
    result = dict(script=script, measured=datetime.now(timezone.utc).isoformat(timespec='seconds'),
                  command=' '.join([Path(sys.argv[0]).name, *sys.argv[1:]]), hardware=hardware(), versions=versions(),
                  git_commit=git_commit(BENCH), load_average={'start': list(load_start), 'end': list(os.getloadavg())},
                  settings={k: shown(v) for k, v in vars(args).items()}, ratios=ratios, **record)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + '.tmp')
    tmp.write_text(json.dumps(result, indent=1, ensure_ascii=False, default=str) + '\n', encoding='utf-8')
    os.replace(tmp, out)
    print(f'results: {out}')
    print(' '.join(f'{k}={v:.4g}' if isinstance(v, float) else f'{k}={v}' for k, v in ratios.items()))
    return result


def measure_in_temp(script: str, measure, args: argparse.Namespace) -> dict:
    "Run `measure(args, folder)` -> (ratios, record) in a fresh temporary folder (removed afterwards), then `finish` with them."
    load_start = os.getloadavg()
    folder = Path(tempfile.mkdtemp(prefix=f'bench-{script}-'))
    try: ratios, record = measure(args, folder)
    finally: shutil.rmtree(folder, ignore_errors=True)
    return finish(script, ratios, record, args, load_start)
