"Measurements: word n-grams, the contamination check, token counts in prepare_data."
from gaokerena.data import contamination, word_ngrams
from gaokerena.sources import count_tokens

STEM = 'بیمار ۴۵ ساله با درد قفسه سینه و تعریق سرد از دو ساعت پیش به اورژانس مراجعه کرده است؛ اقدام بعدی چیست'
TEMPLATE = 'کدام یک از گزینه های زیر محتمل ترین تشخیص برای این بیمار با این علائم است'


def mcq(q): return {'question': q, 'options': {'A': 'الف', 'B': 'ب', 'C': 'ج', 'D': 'د'}}


def test_word_ngrams_see_through_spelling():
    assert word_ngrams('يک دو سه', n=3) == word_ngrams('یک  دو، سه!', n=3) == word_ngrams('یكَ دو سه', n=3)
    assert word_ngrams('می‌خواهم بدانم چرا', n=4) == word_ngrams('می خواهم بدانم چرا', n=4)
    assert word_ngrams('کوتاه است', n=13) == set()


def test_contamination_flags_a_leak_and_ignores_templates():
    bench = [mcq(STEM), mcq('پرسش کوتاه'), *(mcq(f'{TEMPLATE} {w}') for w in ('اول', 'دوم', 'سوم'))]
    leaked = [{'text': 'در یک گزارش آمده بود: ' + STEM.replace('ی', 'ي') + ' و پاسخ آن احیا بود.'}]
    template_only = [{'text': f'در کتاب‌ها می‌خوانیم {TEMPLATE} و این یک الگو است'}]
    out = contamination({'leaked': ('corpus', leaked), 'template': ('corpus', template_only)}, {'exam': ('mcq', bench)})
    assert out == {'leaked': {'exam': 1 / 5}, 'template': {'exam': 0.0}}
    assert contamination({'t': ('corpus', template_only)}, {'exam': ('mcq', bench)}, template_rows=10)['t']['exam'] == 3 / 5


def test_a_template_of_the_training_set_or_one_shared_phrase_is_no_leak():
    "A stem the training set repeats in three or more distinct texts is its template; one shared 13-gram is a phrase, not a leak."
    bench = [mcq(f'{STEM} {TEMPLATE}')]
    stems = [{'text': f'پرسش {i}: {TEMPLATE}'} for i in range(3)]   # "question <i>: " + the template (14 words: two 13-grams)
    assert contamination({'t': ('corpus', stems)}, {'exam': ('mcq', bench)}) == {'t': {'exam': 0.0}}
    assert contamination({'t': ('corpus', stems[:2])}, {'exam': ('mcq', bench)}) == {'t': {'exam': 1.0}}
    assert contamination({'t': ('corpus', stems[:1] * 5)}, {'exam': ('mcq', bench)}) == {'t': {'exam': 1.0}}, 'repeats count once'
    phrase = [{'text': ' '.join(TEMPLATE.split()[:13])}]            # one 13-gram of the template
    assert contamination({'t': ('corpus', phrase)}, {'exam': ('mcq', bench)}) == {'t': {'exam': 0.0}}
    assert contamination({'t': ('corpus', phrase)}, {'exam': ('mcq', bench)}, min_shared=1) == {'t': {'exam': 1.0}}


class WordTokenizer:
    "A tokenizer that counts words (enough to check the batching of count_tokens)."
    def __call__(self, texts, add_special_tokens=False):
        return {'input_ids': [t.split() for t in texts]}


def test_count_tokens_batches():
    assert count_tokens(['a b', 'c'] * 600, WordTokenizer()) == 1800 and count_tokens([], WordTokenizer()) == 0


def test_real_benchmarks_are_clean_and_the_check_sees_real_overlap(real_data):
    from gaokerena.sources import SUBJECTS, load_rows
    bench = {s: ('mcq', load_rows(f'mmlu/{s}', real_data).rows) for s in SUBJECTS} | {'ibmsee': ('mcq', load_rows('ibmsee', real_data).rows)}
    med, pairs = load_rows('medmcqa/filtered', real_data).rows, load_rows('pairs/published', real_data).rows
    out = contamination({'medmcqa': ('mcq', med), 'pairs': ('pairs', pairs)}, bench)
    assert all(v == 0.0 for t in out.values() for v in t.values()), out  # measured on all 22 parts: no 13-gram leak
    control = contamination({'pairs': ('pairs', pairs)}, {'medmcqa': ('mcq', med)})['pairs']['medmcqa']
    assert 0.2 < control < 0.3, control  # measured 0.240 on three parts, 0.260 on all: the pairs' prompts quote translated MedMCQA questions: the check does see overlap
