"The run report: `gaokerena run` writes report.html and report.md, and the page renders in a real headless Chromium."
import shutil, tempfile
from pathlib import Path
import pytest
from gaokerena.cli import CHAPTERS, main
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
    for link in ('03_rlaif/dpo_curves.png', '04_passk/passk.png', 'ledger.png'):
        assert f']({link})' in text and (report/link).exists()


def test_report_renders_with_figures(report, browser):
    _open(browser, report/'report.html')
    assert browser.title.startswith('gaokerena run report')
    images = browser.execute_script(IMAGES)
    assert {alt for alt, *_ in images} >= {'03_rlaif/dpo_curves.png', '04_passk/passk.png', 'cost and wall time per stage'}
    for alt, complete, width, height in images: assert complete and width > 0 and height > 0, alt
    sections = dict(browser.execute_script(SECTIONS))
    assert list(sections) == [*CHAPTERS, 'Cost and carbon ledger']
    assert all(n >= 1 for n in sections.values()), sections
    ledger = browser.execute_script("return document.querySelector('#cost-and-carbon-ledger ~ table').innerText")
    for stage in ('00_data', '01_sft.pretrain', '03_rlaif.dpo', '04_passk', 'total'): assert stage in ledger
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
