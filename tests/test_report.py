"The run report: `gaokerena run` writes report.html and report.md, and the page renders in a real headless Chromium."
import json, shutil, tempfile
from pathlib import Path
import pytest
from gaokerena.config import CHAPTERS
from gaokerena.cli import main
from gaokerena.rows import read_jsonl
from gaokerena.ledger import read_ledger
from gaokerena.ledger import COMPARISON_FILE, TINY_COMPARISON
from gaokerena.report import write_report

CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
CHROMEDRIVER = shutil.which('chromedriver') or '/usr/bin/chromedriver'
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
         '--disable-sync', '--no-first-run']


@pytest.fixture(scope='module')
def report(tiny_run):
    "The report `gaokerena run` writes at the end of a (here: already finished) tiny run."
    run_dir, _ = tiny_run
    for name in ('report.html', 'report.md'): (run_dir/name).unlink(missing_ok=True)
    assert main(['run', '--run-dir', str(run_dir)]) == 0
    return run_dir


@pytest.fixture(scope='module')
def browser():
    "A headless Chromium driven by selenium, with a fresh profile and no network features."
    webdriver = pytest.importorskip('selenium.webdriver', reason='selenium missing: pip install -e ".[dev]"')
    from selenium.webdriver.chrome.service import Service
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip('chromium absent: apt-get install -y chromium chromium-driver (.ci/run does)')
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix='gaokerena-chromium-')
    for flag in FLAGS + [f'--user-data-dir={profile}']: opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


IMAGES = "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight])"
SECTIONS = """return Array.from(document.querySelectorAll('h2')).map(h => {
  let n = 0, el = h.nextElementSibling;
  for (; el && el.tagName !== 'H2'; el = el.nextElementSibling) if (el.tagName === 'TABLE') n++;
  return [h.textContent, n]; })"""


def _open(driver, page: Path):
    driver.get(page.resolve().as_uri())
    assert driver.execute_script('return document.readyState') == 'complete'


def test_run_writes_report(report, capsys):
    html, md = report/'report.html', report/'report.md'
    assert html.exists() and md.exists()
    text = md.read_text()
    for ch in CHAPTERS: assert f'\n## {ch}\n' in text
    assert '## Cost and carbon ledger' in text and '| total |' in text
    for link in ('02_eval/accuracy.png', '03_rlaif/dpo_curves.png', '04_passk/passk.png', '05_grpo/grpo_curves.png', 'ledger.png'):
        assert f']({link})' in text and (report/link).exists()


COMPARED = {'01_sft': 'Phase 1 training: tokens and hours', '02_eval': 'gaokerena-v (v_straight), accuracy %',
            '03_rlaif': 'Phase 2: preference pairs and DPO'}


def _section(md: str, chapter: str) -> str:
    return md.split(f'\n## {chapter}\n')[1].split('\n## ')[0]


def _compared(run_dir, chapter) -> dict:
    "The comparison `chapter` recorded, its rows keyed by their first column."
    table = json.loads((run_dir/chapter/COMPARISON_FILE).read_text())[COMPARED[chapter]]
    return {next(iter(r.values())): r for r in table['rows']} | {'note': table['note']}


def test_report_compares_with_the_papers(report):
    "Chapters 2-4 put the papers' numbers beside ours, and on the tiny profile each table says it is only the layout."
    text = (report/'report.md').read_text()
    for chapter, title in COMPARED.items():
        section = _section(text, chapter)
        assert f'### Compared with the paper: {title}' in section and TINY_COMPARISON in section
        header = section.split(f'### Compared with the paper: {title}\n\n')[1].splitlines()[0]
        assert all(f'| {col} |' in header for col in ('ours', 'paper', 'ours − paper')), header
    sft, ev, rl = (_compared(report, ch) for ch in COMPARED)
    led = read_ledger(report).set_index('stage')
    assert sft['Phase 1 tokens trained (stage 1 + stage 2)']['ours'] == led.loc[['01_sft.pretrain', '01_sft.instruct'], 'tokens'].sum()
    assert sft['Phase 1 tokens trained (stage 1 + stage 2)']['paper'] == 57_000_000
    assert round(sft["the paper's Phase 1 on one A100-40GB, estimated GPU-hours"]['ours'], 1) == 19.5
    generation = json.loads((report/'02_eval'/'metrics.json').read_text())['generation']
    assert {b: (r['ours'], r['paper']) for b, r in ev.items() if b in ('ibmsee', 'mmlu_avg')} == {
        'ibmsee': (round(generation['ibmsee']['accuracy'], 2), 38.69), 'mmlu_avg': (round(generation['mmlu_avg']['accuracy'], 2), 49.31)}
    pairs = list(read_jsonl(report/'03_rlaif'/'pairs.jsonl'))
    assert rl['preference pairs']['ours'] == len(pairs) and rl['preference pairs']['paper'] == 11_000
    assert rl['method B share %']['ours'] == 100 * sum(p['method'] == 'B' for p in pairs) / len(pairs)
    assert rl['method A share %']['ours'] + rl['method B share %']['ours'] == pytest.approx(100)


STUDENTS, COST = 'The students: CoT self-consistency accuracy %', 'Equal cost: RLAIF-DPO against GRPO'


def test_report_compares_the_students(report):
    "Chapter 6's section: its students beside the papers' published ones, with our intervals, and RLAIF-DPO against GRPO at equal cost."
    section = _section((report/'report.md').read_text(), '05_grpo')
    assert all(f'### Compared with the paper: {t}' in section for t in (STUDENTS, COST)) and TINY_COMPARISON in section
    tables = json.loads((report/'05_grpo'/COMPARISON_FILE).read_text())
    students = {r['student']: r for r in tables[STUDENTS]['rows']}
    dpo = json.loads((report/'04_passk'/'metrics.json').read_text())
    assert list(students) == ['aya-expanse-8b (published)', 'gaokerena-v (published)', 'gaokerena-r (published)',
                              f"{dpo['model']} (RLAIF-DPO, chapter 4)", 'tiny+phase1 (GRPO start)', 'tiny+phase1+grpo (GRPO)']
    assert (students['gaokerena-r (published)']['mmlu_avg'], students['aya-expanse-8b (published)']['ibmsee']) == (48.76, 35.71)
    # chapter 4's student is read back from its stored samples: the same self-consistency accuracy chapter 4 reported
    assert students[f"{dpo['model']} (RLAIF-DPO, chapter 4)"]['ibmsee'] == pytest.approx(dpo['scores']['ibmsee']['self-consistency']['accuracy'])
    for row in list(students.values())[3:]:
        lo, hi = (float(x) for x in row['mmlu_avg 95% interval'].split(' to '))
        assert lo <= row['mmlu_avg'] + 0.05 and row['mmlu_avg'] - 0.05 <= hi
    cost = {r['method']: r for r in tables[COST]['rows']}
    led, summary = read_ledger(report), json.loads((report/'05_grpo'/'summary.json').read_text())
    assert cost['RLAIF-DPO']['wall hours'] == pytest.approx(led[led.stage.isin(['03_rlaif.pairs', '03_rlaif.dpo'])].wall_s.sum() / 3600)
    assert cost['GRPO']['wall hours'] == pytest.approx(led[led.stage == '05_grpo.train'].wall_s.sum() / 3600)
    assert cost['GRPO']['accuracy gain (points)'] == pytest.approx(summary['accuracy_after'] - summary['accuracy_before'])
    assert cost['RLAIF-DPO']['teacher API $'] == 0 and cost['GRPO']['total $'] == 0       # a local teacher and a CPU: free


def test_report_renders_with_figures(report, browser):
    _open(browser, report/'report.html')
    assert browser.title.startswith('gaokerena run report')
    images = browser.execute_script(IMAGES)
    assert {alt for alt, *_ in images} >= {'02_eval/accuracy.png', '03_rlaif/dpo_curves.png', '04_passk/passk.png',
                                          '05_grpo/grpo_curves.png', 'cost and wall time per stage'}
    for alt, complete, width, height in images: assert complete and width > 0 and height > 0, alt
    sections = dict(browser.execute_script(SECTIONS))
    assert list(sections) == [*CHAPTERS, 'Cost and carbon ledger']
    assert all(n >= 1 for n in sections.values()), sections
    ledger = browser.execute_script("return document.querySelector('#cost-and-carbon-ledger ~ table').innerText")
    for stage in ('00_data', '01_sft.pretrain', '03_rlaif.dpo', '04_passk', '05_grpo.train', 'total'): assert stage in ledger
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(r => r.name)")
    assert all(r.startswith('data:') for r in resources), resources


def test_browser_check_catches_a_broken_figure(report, browser, tmp_path):
    "The same check fails on a page whose figure does not decode: it is not a check that cannot fail."
    broken = tmp_path/'run'
    shutil.copytree(report, broken, ignore=shutil.ignore_patterns('checkpoint-*', '*.safetensors', 'notebooks', 'cache'))
    (broken/'04_passk'/'passk.png').write_bytes(b'not a png')
    page, _ = write_report(broken)
    _open(browser, page)
    widths = {alt: width for alt, _, width, _ in browser.execute_script(IMAGES)}
    assert widths['04_passk/passk.png'] == 0 and widths['03_rlaif/dpo_curves.png'] > 0
