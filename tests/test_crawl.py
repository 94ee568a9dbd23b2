"The crawler against fixture sites served on 127.0.0.1: robots.txt, retries, the BFS walk, resuming, politeness."
import socket
import pytest
from gaokerena.crawl import Crawler, FetchError, FixtureSite, PoliteFetcher, article_parser, demo_forum, forum_parser, html_to_text

PARSE = forum_parser('.question', '.answer', '.related a')


def crawler(tmp_path, **kw):
    return Crawler(tmp_path/'state', kw.pop('parse', PARSE), **{'delay': 0, 'backoff': 0, 'retries': 2, 'timeout': 5, **kw})


def test_forum_walk_obeys_robots_and_retries_a_503(tmp_path):
    with FixtureSite(demo_forum(), failures={'/q/3': [503]}) as site:
        c = crawler(tmp_path)
        c.add([f'{site.url}/q/1'])
        assert c.crawl(progress=False) == {'done': 5, 'disallowed': 1}
        log = list(site.requests)
    assert '/private/notes' not in log and log.count('/robots.txt') == 1
    assert log.count('/q/3') == 2 and all(log.count(f'/q/{i}') == 1 for i in (1, 2, 4, 5))  # a cycle is walked once
    rows = c.rows()
    assert [r['id'].rsplit('/', 1)[-1] for r in rows] == ['1', '2', '3', '4', '5']  # breadth-first: depth 0, 1, 1, 2, 2
    assert rows[1]['question'] == 'فشار خون ۱۵ روی ۹ خطرناک است؟' and rows[1]['source'] == '127.0.0.1'
    assert rows[1]['answer'].startswith('این فشار بالاست') and 'پرسش مرتبط' not in rows[1]['answer']
    depth = dict(c.db.execute('SELECT url, depth FROM pages').fetchall())
    assert [depth[f'{site.url}/q/{i}'] for i in range(1, 6)] == [0, 1, 1, 2, 2]


def test_persistent_failure_is_recorded_and_the_crawl_goes_on(tmp_path):
    with FixtureSite(demo_forum(), failures={'/q/2': [500] * 10}) as site:
        c = crawler(tmp_path)
        c.add([f'{site.url}/q/1'])
        status = c.crawl(progress=False)
        log = list(site.requests)
    assert status == {'done': 3, 'failed': 1}  # /q/4 (and /private/) are linked only from the failed /q/2
    ((url, why),) = c.failures()
    assert url == f'{site.url}/q/2' and 'HTTP 500 after 2 retries' in why and url in why
    assert log.count('/q/2') == 3  # the first try and two retries


def test_interrupted_crawl_resumes_without_repeats(tmp_path):
    with FixtureSite(demo_forum()) as site:
        first = crawler(tmp_path)
        first.add([f'{site.url}/q/1'])
        assert first.crawl(max_pages=2, progress=False) == {'done': 2, 'queued': 3}
        first.db.close()
        again = crawler(tmp_path)  # a new process: only the folder is shared
        assert again.add([f'{site.url}/q/1']) == 0  # the seed is already known
        assert again.crawl(progress=False) == {'done': 5, 'disallowed': 1}
        pages = [p for p in site.requests if p != '/robots.txt']
    assert sorted(pages) == ['/q/1', '/q/2', '/q/3', '/q/4', '/q/5']
    assert [r['id'].rsplit('/', 1)[-1] for r in again.rows()] == ['1', '2', '3', '4', '5']


def test_a_crash_while_parsing_loses_only_that_page(tmp_path):
    calls = []
    def fragile(url, soup):
        calls.append(url)
        if url.endswith('/q/3') and calls.count(url) == 1: raise KeyboardInterrupt  # the laptop is closed mid-page
        return PARSE(url, soup)
    with FixtureSite(demo_forum()) as site:
        c = crawler(tmp_path, parse=fragile)
        c.add([f'{site.url}/q/1'])
        with pytest.raises(KeyboardInterrupt): c.crawl(progress=False)
        assert c.status() == {'done': 2, 'queued': 3} and len(c.rows()) == 2
        again = crawler(tmp_path, parse=fragile)
        again.crawl(progress=False)
        pages = [p for p in site.requests if p != '/robots.txt']
    assert sorted(pages) == ['/q/1', '/q/2', '/q/3', '/q/3', '/q/4', '/q/5']  # only the interrupted page twice
    assert len(again.rows()) == 5 and len({r['id'] for r in again.rows()}) == 5


@pytest.mark.parametrize('robots_status,expected', [(404, {'done': 1}), (403, {'disallowed': 1}), (503, {'disallowed': 1})])
def test_robots_txt_status(tmp_path, robots_status, expected):
    pages = {'/a': '<div class="question">q</div><div class="answer">a</div>'}
    with FixtureSite(pages, failures={'/robots.txt': [robots_status] * 5}) as site:
        c = crawler(tmp_path)
        c.add([f'{site.url}/a'])
        assert c.crawl(progress=False) == expected


def test_unreachable_host_fails_its_pages_with_the_reason(tmp_path):
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]  # closed again: nothing listens there
    c = crawler(tmp_path, retries=0)
    c.add([f'http://127.0.0.1:{port}/q/1'])
    assert c.crawl(progress=False) == {'failed': 1}
    assert 'ConnectionError' in c.failures()[0][1] and f'127.0.0.1:{port}/robots.txt' in c.failures()[0][1]


def test_delay_and_crawl_delay_without_waiting():
    now, slept = [0.0], []
    f = PoliteFetcher(delay=2.0, clock=lambda: now[0], sleep=lambda s: (slept.append(s), now.__setitem__(0, now[0] + s)))
    f.wait('a.ir'); now[0] += 0.5; f.wait('a.ir'); f.wait('b.ir')
    assert slept == [1.5]  # a.ir waits the rest of its 2 s, b.ir has its own clock
    with FixtureSite({'/robots.txt': 'User-agent: *\nCrawl-delay: 7\n'}) as site:
        f = PoliteFetcher(delay=1.0, backoff=0, clock=lambda: now[0], sleep=lambda s: (slept.append(s), now.__setitem__(0, now[0] + s)))
        assert f.allowed(f'{site.url}/x')
        f.wait(site.url.removeprefix('http://'))
    assert slept == [1.5, 7.0]


def test_magazine_articles_links_and_depth(tmp_path):
    art = lambda t, nxt='': f'<html><body><header>منو</header><article><h1>{t}</h1><p>متن {t}.</p></article>{nxt}</body></html>'
    pages = {'/list': '<a class="more" href="/a/1">۱</a><a class="more" href="/a/2">۲</a><a class="more" href="http://elsewhere.invalid/x">بیرون</a>',
             '/a/1': art('یک', '<a class="more" href="/a/3">بعدی</a>'), '/a/2': art('دو'), '/a/3': art('سه')}
    with FixtureSite(pages) as site:
        c = crawler(tmp_path, parse=article_parser('article', 'a.more', source='magazine'), max_depth=1)
        c.add([f'{site.url}/list'])
        assert c.crawl(progress=False) == {'done': 3}  # /a/3 is at depth 2, the other host is never queued
    assert [r['text'] for r in c.rows()] == ['یک\nمتن یک.', 'دو\nمتن دو.'] and c.rows()[0]['source'] == 'magazine'


def test_html_to_text():
    html = ('<html><head><title>t</title><style>x{}</style></head><body><nav>منو</nav><div>یک   دو<br/>سه</div>'
            '<table><tr><td>الف</td><td>ب</td></tr></table><script>var a;</script><p>&nbsp;پایان </p></body></html>')
    assert html_to_text(html) == 'یک دو\nسه\nالف ب\nپایان'
    assert html_to_text('') == ''


def test_fetch_error_names_url():
    with FixtureSite({}) as site:
        with pytest.raises(FetchError, match=r'/missing: HTTP 404 after 0 retries'):
            PoliteFetcher(delay=0, retries=0).fetch(f'{site.url}/missing')
