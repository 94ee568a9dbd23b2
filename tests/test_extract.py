"The Persian answer extractor: every mention form, cue and non-answer type on hand-written answers, and its agreement with the authors' hand labels."
import math
import pandas as pd
import pytest
from gaokerena.evaluate import (ANSWER_CUES, OPTION_FORMS, PAPER_SYSTEMS, answer_evidence, extract_all, extract_choice,
                                extraction_agreement, normalise_answer_text, option_mentions, published_generations)

OPTS = {'A': 'آپاندیس', 'B': 'کیسه صفرا', 'C': 'طحال', 'D': 'مثانه'}

@pytest.mark.parametrize('name', list(OPTION_FORMS))
def test_each_mention_form_reads_its_example(name):
    pattern, example = OPTION_FORMS[name]
    assert [m.letter for m in option_mentions(normalise_answer_text(example))] == ['C']

@pytest.mark.parametrize('text, expected', [
    ('گزینه [A] درست است.', 'A'), ('گزینه **B** صحیح است.', 'B'), ('گزینه (C) صحیح است.', 'C'),
    ('پاسخ صحیح **D** است.', 'D'), ('پاسخ: **[B]**', 'B'), ('پاسخ =D', 'D'), ('پاسخ نهایی: ج', 'C'),
    ('پاسخ درست گزینه الف است.', 'A'), ('پاسخ درست گزینه ٢ است.', 'B'), ('گزینه چهارم صحیح است.', 'D'),
    ('The final answer is option B.', 'B'), ('گزينه [C] صحيح است.', 'C'), ('پاسخ صحیح [Ｄ] است.', 'D'),
    ('**پاسخ نهایی:**\n\n**[A] آپاندیس**', 'A'), ('## نتیجه‌گیری\n\nگزینه ب', 'B'),
    ('بنابراین گزینه b صحیح است.', 'B'), ('پاسخ: **d (مثانه)**', 'D'),
])
def test_mention_forms_in_a_sentence(text, expected):
    assert extract_choice(text) == expected

@pytest.mark.parametrize('text, expected', [
    # a chain of thought discusses every option; the last cued mention is the answer
    ('- گزینه [A]: صحیح است.\n- گزینه [B]: صحیح است.\n- گزینه [C]: نادرست است.\n\nبنابراین بهترین گزینه [B] است.', 'B'),
    # a straight answer states the option first, then rejects the others
    ('پاسخ صحیح [C] است.\n\nگزینه [A] نادرست است و گزینه [D] هم غلط است.', 'C'),
    ('[D] : مثانه\n\nاین اندام در لگن قرار دارد.', 'D'),
    # negated mentions are never the answer
    ('گزینه [A] صحیح نیست، بنابراین پاسخ درست [B] است.', 'B'),
    ('پاسخ صحیح نه [A] بلکه [C] است.', 'C'),
    ('در نتیجه گزینه‌های [A]، [B] و [D] رد شدند و گزینه [C] باقی ماند که صحیح است.', 'C'),
    # weaker evidence when nothing is cued
    ('شکستگی معمولاً با گزینه [B] همراه است.', 'B'),
])
def test_cot_and_straight_answers(text, expected):
    assert extract_choice(text) == expected

@pytest.mark.parametrize('rule, text, expected', [
    # each rule came from a published chain of thought whose misreading flipped a 3-of-5 vote; the texts here are written anew
    ('a cue whose sentence ends on its line reads only that sentence',
     'گزینه [C] درست است.\n\nبا توجه به توضیحات بالا، طحال در سمت چپ شکم است. گزینه‌ها را یک به یک مرور می‌کنیم:\n\n[A] آپاندیس: در پایین شکم.', 'C'),
    ('a cue sentence without a stop still runs on into the next paragraph', '**پاسخ نهایی**\n\n[D] مثانه', 'D'),
    ('options listed under «the other options are rejected:» are not chosen',
     'می‌توانیم گزینه [B] را انتخاب کنیم.\n\nگزینه‌های دیگر را رد می‌کنیم:\n- گزینه [A]: در پایین شکم است.\n- گزینه [D]: این گزینه درست پشت استخوان عانه است.', 'B'),
    ('... with blank lines between bulleted items',
     'پاسخ صحیح [C] است.\n\n**سایر گزینه‌ها چرا نادرست هستند:**\n\n* **گزینه A:** در پایین شکم.\n\n* **گزینه D:** این گزینه درست بالای لگن است.', 'C'),
    ('... unless the item itself calls its option true',
     'پاسخ: طحال.\n\nسایر گزینه‌ها نادرست هستند:\n* [A] غلط است.\n* [B] درست است، کیسه صفرا هم در شکم است.', 'B'),
    ('«the worst option» is no answer cue', 'گزینه [C] صحیح است. بدترین گزینه‌ی ممکن [A] است.', 'C'),
    ('«بدین ترتیب» (thus) concludes like «بنابراین»', 'گزینه [A] را بررسی کردیم. بدین ترتیب پاسخ (ج) با شرایط پرسش جور است.', 'C'),
    ('a superlative after «ولی» (but) describes something else',
     'پاسخ صحیح گزینه [C] است.\nگزینه [D] هم محتمل است ولی طحال مهم‌ترین عضو لنفاوی شکم است.', 'C'),
])
def test_rules_found_where_extraction_flipped_a_vote(rule, text, expected):
    assert extract_choice(text) == expected, rule

@pytest.mark.parametrize('text, expected', [
    ('بنابراین پاسخ صحیح [A] و [C] است.', 'multiple'),
    ('پاسخ نهایی: A یا B', 'multiple'),
    ('پس همه گزینه‌ها صحیح هستند.', 'multiple'),
    ('بنابراین پاسخ صحیح هیچ‌کدام از گزینه‌ها نیست.', 'none'),
    ('پاسخ: هیچ یک از موارد', 'none'),
    ('', 'invalid'), ('   \n', 'invalid'), (None, 'invalid'), (math.nan, 'invalid'),
    ('برای پاسخ به این پرسش ابتدا باید ساختار شکم را بررسی', 'invalid'),
    ('گزینه [B] نادرست است.', 'invalid'),
    ('ویتامین C در گروه خونی B اثری ندارد.', 'invalid'),
])
def test_non_answers_are_typed_not_guessed(text, expected):
    assert extract_choice(text) == expected

def test_exception_questions_turn_negation_around():
    q = 'همه اندام‌های زیر در شکم هستند به جز:'
    assert extract_choice('گزینه [B] نادرست است.', question=q) == 'B'
    assert extract_choice('گزینه نادرست [D] است.', question='کدام گزینه نادرست است؟') == 'D'
    assert extract_choice('[A] درست است، [B] درست است، [C] صحیح نیست.', question=q) == 'C'
    assert extract_choice('گزینه [B] نادرست است.', question='کدام اندام در شکم است؟') == 'invalid'

def test_options_mask_their_own_words_and_name_answers_by_text():
    opts = {'A': 'باز شدن چشم', 'B': 'پاسخ کلامی', 'C': 'بهترین پاسخ حرکتی', 'D': 'پاسخ مردمک'}
    text = 'پاسخ صحیح گزینه [D] است.\n\nگزینه‌های [A]، [B] و [C] (بهترین پاسخ حرکتی) در این مقیاس به کار می‌روند.'
    assert extract_choice(text, options=opts) == 'D'
    assert extract_choice('پاسخ صحیح طحال است.', options=OPTS) == 'C'
    assert extract_choice('طحال بیش از همه آسیب می‌بیند.', options=OPTS) == 'C'
    assert extract_choice('پاسخ صحیح طحال است.') == 'invalid'

def test_every_cue_example_is_read():
    got = {name: extract_choice(example) for name, (_, example) in ANSWER_CUES.items()}
    assert all(v in 'ABCD' for v in got.values()), got

def test_evidence_names_the_rule_and_keeps_the_last_cued_reading():
    ev = answer_evidence('پاسخ صحیح [A] است. اما با بررسی بیشتر، پاسخ نهایی: [B]')
    cued = sorted((e.pos, e.rule, e.answer) for e in ev if e.tier == 0)
    assert cued[-1][2] == 'B' and {'answer is', 'answer:'} <= {r for _, r, _ in cued}
    assert extract_choice('پاسخ صحیح [A] است. اما با بررسی بیشتر، پاسخ نهایی: [B]') == 'B'

def test_agreement_counts_non_answers_as_one_outcome():
    df = pd.DataFrame({'style': ['straight'] * 3, 'model': ['m'] * 3, 'benchmark': ['b'] * 3,
                       'generation': ['پاسخ: A', 'پاسخ: هیچ‌کدام از گزینه‌ها', 'نمی‌دانم'], 'label': ['A', 'invalid', 'B']})
    df['extracted'] = extract_all(df)
    assert df.extracted.tolist() == ['A', 'none', 'invalid']
    table, confusion = extraction_agreement(df)
    overall = table.loc[('all', 'all', 'all')]
    assert round(overall.agreement, 2) == 66.67 and round(overall.exact, 2) == 33.33 and overall.disagree == 1
    assert confusion.loc['invalid', 'none'] == 1 and confusion.loc['B', 'invalid'] == 1


def test_agreement_with_the_authors_hand_labels(real_data):
    gens = published_generations(real_data)
    assert set(gens.model) == set(PAPER_SYSTEMS) and len(gens) == 13520, gens.groupby(['style', 'model']).size()
    gens['extracted'] = extract_all(gens)
    table, confusion = extraction_agreement(gens)
    with pd.option_context('display.width', 200, 'display.max_rows', 200):
        print(table.xs('all', level='benchmark'), table, confusion, sep='\n\n')
    overall = table.loc[('all', 'all', 'all'), 'agreement']
    assert overall >= 98, f'agreement with the hand labels {overall:.2f}% < 98%'
