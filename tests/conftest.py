"Shared fixtures: one torch thread, the real-data folder, and one tiny run of the whole pipeline."
import os
os.environ.setdefault('OMP_NUM_THREADS', '1')
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
from pathlib import Path
import pytest

pytest_plugins = ['llm_server']  # the `serve` fixture: a scripted OpenAI-compatible server on 127.0.0.1
ROOT = Path(__file__).resolve().parent.parent


def data_dir_or_none():
    "The folder of the authors' repositories: $GAOKERENA_DATA_DIR, else ../shared/data beside the clone."
    d = Path(os.environ.get('GAOKERENA_DATA_DIR') or ROOT.parent/'shared'/'data')
    return d if (d/'gaokerena-v').is_dir() and (d/'gaokerena-r').is_dir() else None


@pytest.fixture(scope='session')
def real_data():
    "Path to the authors' data; skips the test with a reason when it is absent."
    d = data_dir_or_none()
    if d is None: pytest.skip("real data absent: set GAOKERENA_DATA_DIR or place it at ../shared/data (CC BY-NC-SA, never committed)")
    return d


@pytest.fixture(scope='session')
def tiny_run(tmp_path_factory):
    "One `gaokerena run` of all five chapters on the tiny profile; yields (run_dir, report)."
    from gaokerena.cli import run_chapters
    run_dir = tmp_path_factory.mktemp('tiny-run')
    report = run_chapters('tiny', run_dir)
    return run_dir, report
