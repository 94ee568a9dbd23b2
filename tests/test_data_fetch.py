"`gaokerena data fetch`: real git clones of local repositories and real downloads from an HTTP server on 127.0.0.1 (no network)."
import json, re, subprocess, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
import pytest
from test_data import KQA, PAIRS, write_xlsx
from gaokerena.cli import main
from gaokerena.config import load_settings, run_context
from gaokerena.sources import CORPUS_FILE, fetch_corpus, http_download, load_rows
from gaokerena.rows import DataError

# 40 lines of a corpus in the authors' fields ("Iron-deficiency anaemia is common in young women. <n>")
CORPUS = ''.join(json.dumps({'content': f'کم‌خونی فقر آهن در زنان جوان شایع است. {i}', 'source': 'salamat.ir'}, ensure_ascii=False) + '\n'
                 for i in range(40)).encode('utf-8')


def git_repo(folder: Path, files: dict[str, bytes]) -> str:
    "A local git repository holding `files` {path: bytes}, committed; its file:// URL stands in for GitHub."
    for path, data in files.items():
        (folder/path).parent.mkdir(parents=True, exist_ok=True)
        (folder/path).write_bytes(data)
    git = lambda *a: subprocess.run(['git', '-C', str(folder), *a], check=True, capture_output=True)
    git('init', '-q'); git('add', '.'); git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'data')
    return folder.as_uri()


@pytest.fixture
def repos(tmp_path):
    "Local stand-ins for Gaokerena-V (K-QA) and Gaokerena-R (two pair parts): {'repo_v': url, 'repo_r': url}."
    kqa = json.dumps({'Question': 'سرفه دارم؟', 'Free_form_answer': 'به پزشک مراجعه کنید.'}, ensure_ascii=False)  # "I cough?" "See a doctor."
    head = ['id', 'prompt', 'correct_choice', 'prefered_answer', 'rejected_answer']
    for p in (1, 2):
        write_xlsx(tmp_path/'r-src'/PAIRS.format(p).removeprefix('gaokerena-r/'), head, [[f'p{p}', 'پرسش', 'A', 'خوب', 'بد']])
    return {'repo_v': git_repo(tmp_path/'v-src', {KQA.removeprefix('gaokerena-v/'): (kqa + '\n').encode('utf-8')}),
            'repo_r': git_repo(tmp_path/'r-src', {})}


class Files(ThreadingHTTPServer):
    "An HTTP server on 127.0.0.1 serving `files` {path: bytes}, honouring Range requests unless `ranges` is False."
    daemon_threads = True

    def __init__(self, files: dict[str, bytes], ranges: bool = True):
        super().__init__(('127.0.0.1', 0), FileHandler)
        self.files, self.ranges, self.requests = files, ranges, []

    @property
    def url(self): return f'http://127.0.0.1:{self.server_address[1]}'


class FileHandler(BaseHTTPRequestHandler):
    def log_message(self, *args): pass

    def do_GET(self):
        data, rng = self.server.files.get(self.path), self.headers.get('Range')
        self.server.requests.append({'path': self.path, 'range': rng})
        if data is None: return self.send_error(404)
        start = int(re.fullmatch(r'bytes=(\d+)-', rng).group(1)) if rng and self.server.ranges else 0
        if start >= len(data) and rng: return self.send_error(416)
        self.send_response(206 if start else 200)
        self.send_header('Content-Length', str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


@pytest.fixture
def files():
    "Start a `Files` server: files(mapping, ranges=True) -> server; stopped after the test."
    servers = []
    def start(mapping, ranges=True):
        srv = Files(mapping, ranges)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return srv
    yield start
    for srv in servers: srv.shutdown(); srv.server_close()


def sets(urls: dict) -> list[str]:
    return [a for k, v in urls.items() for a in ('--set', f'sources.{k}={v}')]


def test_fetch_clones_downloads_resumes_and_says_what_it_got(tmp_path, repos, files, capsys):
    srv = files({'/Medical_Corpus.jsonl': CORPUS})
    dest = tmp_path/'data'
    part = dest/(CORPUS_FILE + '.part')
    part.parent.mkdir(parents=True)
    part.write_bytes(CORPUS[:1000])                     # a download cut off after 1000 bytes
    (dest/'gaokerena-r.partial').mkdir()                # and a clone cut off half-way
    (dest/'gaokerena-r.partial'/'junk').write_text('x')
    assert main(['data', 'fetch', str(dest), '--corpus', f'{srv.url}/Medical_Corpus.jsonl', *sets(repos)]) == 0
    assert (dest/CORPUS_FILE).read_bytes() == CORPUS and not part.exists() and not (dest/'gaokerena-r.partial').exists()
    assert srv.requests == [{'path': '/Medical_Corpus.jsonl', 'range': 'bytes=1000-'}], 'only the missing bytes are fetched'
    assert (dest/KQA).is_file() and (dest/PAIRS.format(2)).is_file() and (dest/'gaokerena-v'/'.git').is_dir()
    out = capsys.readouterr().out
    assert f'gaokerena-v: cloned ({repos["repo_v"]})' in out and 'corpus: downloaded' in out
    assert re.search(r'pairs/published +2 file\(s\)', out) and re.search(r'kqa +1 file\(s\)', out)
    assert re.search(r'mf3qa/train +missing: A fresh clone', out) and f'data_dir = {dest.resolve()}' in out
    assert main(['data', 'fetch', str(dest), '--corpus', f'{srv.url}/Medical_Corpus.jsonl', *sets(repos)]) == 0
    out = capsys.readouterr().out
    assert 'gaokerena-v: present' in out and 'gaokerena-r: present' in out and 'corpus: present' in out
    assert len(srv.requests) == 1, 'a second run downloads nothing'
    kqa = load_rows('kqa', dest)
    assert [r['answer'] for r in kqa.rows] == ['به پزشک مراجعه کنید.']
    corpus = load_rows('corpus', dest)
    assert len(corpus.rows) == 40 and corpus.rows[3]['text'].endswith(' 3') and corpus.rows[0]['source'] == 'salamat.ir'


def test_a_failed_clone_or_download_is_exit_1_with_the_reason(tmp_path, repos, files, capsys):
    assert main(['data', 'fetch', str(tmp_path/'a'), *sets({**repos, 'repo_r': 'file:///nowhere'})]) == 1
    assert 'could not clone file:///nowhere' in capsys.readouterr().err and not (tmp_path/'a'/'gaokerena-r').exists()
    srv = files({})
    assert main(['data', 'fetch', str(tmp_path/'b'), '--corpus', f'{srv.url}/gone.jsonl', *sets(repos)]) == 1
    assert f'{srv.url}/gone.jsonl: HTTP 404' in capsys.readouterr().err
    assert main(['data', 'fetch', str(tmp_path/'c'), '--corpus', 'ftp://x', *sets(repos)]) == 1
    assert "corpus source 'ftp://x': expected gdrive, hub or an http(s) URL" in capsys.readouterr().err


def test_a_server_that_ignores_the_range_restarts_the_download(tmp_path, files):
    srv = files({'/c': CORPUS}, ranges=False)
    path = tmp_path/'c.jsonl'
    (tmp_path/'c.jsonl.part').write_bytes(b'stale bytes of another file')
    assert http_download(f'{srv.url}/c', path) == len(CORPUS) and path.read_bytes() == CORPUS


def test_a_whole_partial_file_is_finished_without_downloading(tmp_path, files):
    srv = files({'/c': CORPUS})
    (tmp_path/'c.jsonl.part').write_bytes(CORPUS)
    assert http_download(f'{srv.url}/c', tmp_path/'c.jsonl') == 0 and (tmp_path/'c.jsonl').read_bytes() == CORPUS


def test_google_drive_id_goes_to_the_downloader(tmp_path, files):
    "The default source is the authors' Google Drive file; the downloader is injectable, here HTTP from 127.0.0.1."
    srv = files({'/drive-file': CORPUS})
    s = load_settings(overrides={'sources.corpus_gdrive_id': 'drive-file'})
    path, status = fetch_corpus(tmp_path, 'gdrive', s, download=lambda what, to: http_download(f'{srv.url}/{what}', to))
    assert (path, status) == (tmp_path/CORPUS_FILE, 'downloaded') and path.read_bytes() == CORPUS
    assert load_settings().sources['corpus_gdrive_id'] == '11iTI9YpShmEkMHMzj4sERn8Fs4Cpty7N'


def test_a_gpu_profile_reads_repository_only_data_from_its_clones(tmp_path, repos, capsys):
    "K-QA and the pairs are on no hub: a GPU profile without data_dir clones the repositories once into repos_cache."
    overrides = {f'sources.{k}': v for k, v in repos.items()} | {'sources.repos_cache': str(tmp_path/'cache')}
    ctx = run_context('colab-l4', tmp_path/'run', overrides=overrides)
    assert load_rows('kqa', ctx).rows[0]['question'] == 'سرفه دارم؟'
    assert 'gaokerena-v: cloned' in capsys.readouterr().out
    assert [r['id'] for r in load_rows('pairs/published', ctx).rows] == ['p1', 'p2']
    assert 'gaokerena-v: present' in capsys.readouterr().out
    with pytest.raises(DataError, match="kqa is not on the hub, only in the authors' repositories"): load_rows('kqa', 'hub')
