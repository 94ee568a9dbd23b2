"Persian normalisation (golden cases) and forum Q&A cleaning on synthetic rows."
import random, re
import pytest
from gaokerena.sources import CHAR_MAP, normalise
from gaokerena.data import answer_problem, clean_forum, keep_scores, shingles

GOLDEN = [  # (input, output, remove diacritics)
    ('كتاب هاي مفيد', 'کتاب‌های مفید', False),                    # Arabic kaf/yeh; plural suffix joined
    ('ي ى ك ە ة', 'ی ی ک ه ه', False),                            # every Arabic letter form in the table
    ('خانۀ ما', 'خانهٔ ما', False),                                # heh with yeh above -> heh + hamza
    ('مي خواهم بدانم', 'می‌خواهم بدانم', False),                   # prefix می joined
    ('نمی   شود', 'نمی‌شود', False),
    ('بزرگ ترین', 'بزرگ‌ترین', False),
    ('تاﻻموس ﺧﻮﺏ', 'تالاموس خوب', False),                          # presentation forms
    ('\u202bرکتوس\u202c \u202bفوقانی\u202c', 'رکتوس فوقانی', False),  # direction marks
    ('\ufeffسلام\u200e', 'سلام', False),
    ('خانه\u200c\u200c\u200cها', 'خانه‌ها', False),                # one ZWNJ at most
    ('سلام \u200c دکتر\u200c', 'سلام دکتر', False),                 # none next to a space or at the end
    ('کم\u200bخونی', 'کم‌خونی', False),                             # zero-width space read as ZWNJ
    ('بـــیمار', 'بیمار', False),                                  # tatweel
    ('سلام ، خوبی ؟', 'سلام، خوبی؟', False),                        # no space before punctuation
    ('یک\t\tدو   سه\n\n\n\nچهار  \n پنج', 'یک دو سه\n\nچهار\nپنج', False),
    ('معمولاً دکتر', 'معمولاً دکتر', False),                        # diacritics kept by default
    ('معمولاً دُکتر', 'معمولا دکتر', True),
    ('سیستمی جدید', 'سیستمی جدید', False),                          # «می» inside a word is not a prefix
    ('مینا ها', 'مینا‌ها', False),
]


@pytest.mark.parametrize('text,expected,diacritics', GOLDEN)
def test_normalise_golden(text, expected, diacritics):
    assert normalise(text, diacritics=diacritics) == expected
    assert normalise(expected, diacritics=diacritics) == expected  # idempotent


DIGITS = '0123456789۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩'


def test_digits_are_never_rewritten():
    assert not set(CHAR_MAP) & set(DIGITS)
    rng = random.Random(0)
    alphabet = DIGITS + 'يكیکمی ها\u200c\u200b\u202b.،' + 'ﻻﺧ'
    for _ in range(500):
        text = ''.join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
        assert re.findall(f'[{DIGITS}]', normalise(text)) == re.findall(f'[{DIGITS}]', text), text
    assert normalise('قرص ۵۰۰ میلی‌گرم، ٣ بار، 2 هفته') == 'قرص ۵۰۰ میلی‌گرم، ٣ بار، 2 هفته'
    assert normalise('می ۲ بار') == 'می ۲ بار'  # a digit is not a verb: no ZWNJ


LONG = ('کم‌خونی فقر آهن در زنان جوان بیشتر از خونریزی قاعدگی زیاد یا رژیم غذایی کم‌آهن است. برای درمان، قرص آهن را با '
        'معده خالی و همراه آب پرتقال بخورید و از مصرف چای یک ساعت پیش و پس از آن پرهیز کنید. سه ماه پس از شروع درمان '
        'آزمایش خون و فریتین را تکرار کنید؛ اگر بهبود نیافت، پزشک باید علت دیگری را بررسی کند.')
Q = 'سلام، من خانمی سی ساله هستم و آزمایش خونم کم‌خونی فقر آهن نشان داده است؛ برای درمان چه کار کنم؟'


def test_answer_rules():
    assert len(LONG.split()) >= 40
    assert answer_problem('سلام، موفق باشید 🌸') == 'greeting'
    assert answer_problem('با سلام و احترام. ممنون از لطف شما') == 'greeting'
    assert answer_problem('https://example.com/a') == 'link'
    assert answer_problem('برای پاسخ به این لینک مراجعه کنید www.example.ir/x') == 'link'
    assert answer_problem('!!!') == 'greeting'
    assert answer_problem('به پزشک مراجعه کنید.') == 'short'
    assert answer_problem(LONG) is None
    assert answer_problem(LONG + ' منبع: https://example.com/a') is None  # a long answer that cites a link is fine
    assert answer_problem(LONG, min_answer_words=100) == 'short'


def test_clean_forum_reasons_in_order():
    rows = [{'question': Q, 'answer': LONG},
            {'question': Q.replace('کم‌خونی', 'كم خوني '), 'answer': 'دیگر: ' + LONG},   # same question after normalising
            {'question': Q.replace('درمان', 'درمانش'), 'answer': LONG + ' موفق باشید'},  # near-duplicate question
            {'question': 'سؤالی کاملا دیگر درباره دیابت بارداری و رژیم غذایی مادر', 'answer': LONG},  # same answer, new question: kept
            {'question': Q, 'answer': 'سلام'},                                         # greeting before duplicate
            {'question': 'تب', 'answer': 'مراجعه کنید'}]
    assert clean_forum(rows) == [None, 'duplicate', 'near_duplicate', None, 'greeting', 'short']
    assert clean_forum(rows, near_threshold=0.95)[2] is None


def test_a_dropped_pair_does_not_block_a_later_good_one():
    rows = [{'question': Q, 'answer': 'کوتاه'}, {'question': Q, 'answer': LONG}]
    assert clean_forum(rows) == ['short', None]


def test_shingles_ignore_spacing_and_zwnj_variants():
    assert shingles('کم‌خونی') == shingles('کم خونی') and shingles('ab', k=5) == {'ab'}


def test_keep_scores():
    s = keep_scores([True, True, False, False], [True, False, True, False])
    assert s == {'rows': 4, 'kept': 2, 'reference_kept': 2, 'agreement': 0.5, 'precision': 0.5, 'recall': 0.5}


def test_bundled_forum_noise_is_dropped_and_clean_rows_kept():
    from collections import Counter
    from gaokerena.sources import load_rows
    forum = load_rows('forum/sample/crawled')
    reasons = clean_forum(forum.rows)
    noise = [r.get('noise') for r in forum.rows]
    assert set(noise) - {None} == {'short', 'greeting', 'link', 'duplicate', 'near_duplicate'}
    assert [x is None for x in reasons] == [n is None for n in noise]
    by_label = Counter((n, x) for n, x in zip(noise, reasons) if n)
    assert all(by_label[(k, k)] >= 10 for k in ('short', 'link', 'duplicate'))  # most junk is dropped for its own reason
    # the near-duplicates differ from an earlier question by a word or two: only MinHash can catch them
    assert by_label[('near_duplicate', 'near_duplicate')] == noise.count('near_duplicate') == 12
