"The Persian answer extractor: every mention form, cue and non-answer type on hand-written answers, and its agreement with the authors' hand labels."
import math
import pandas as pd
import pytest
from gaokerena.extract import (ANSWER_CUES, EXCEPT_CUES, MEDMOBILE, OPTION_FORMS, PAPER_SYSTEMS, RULE_TIERS,
                               TRUSTED_READINGS, Evidence, all_evidence, answer_evidence, decide, deciding, extract_all,
                               extract_choice, extract_with_llm, extraction_agreement, leave_one_out, llm_choice,
                               normalise_answer_text, option_mentions, published_generations, reading_kind,
                               select_tiers, trusted_readings)

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


@pytest.mark.parametrize('rule, text, question, expected', [
    # patterns the rules missed on sheets they were not written on, and guards on how far each new rule reaches; written anew
    ('the answer first, then «the other options are less likely:» and the rejected ones, one of them "the best option for ..."',
     'پاسخ: [C]\n\nگزینه‌های دیگر کمتر احتمال دارند:\n* **A:** در پایین شکم است.\n* **D:** بهترین گزینه برای لگن است.', None, 'C'),
    ('... whatever the header says about them («for the other options, these reasons:»)',
     'گزینه صحیح **D** است.\n\nدر سایر گزینه‌ها، دلایل زیر وجود دارد:\n* **A:** در پایین شکم.\n* **B:** شایع‌ترین علت درد است.', None, 'D'),
    ('... also when the question asks for the exception', 'پاسخ: [B]\n\nگزینه‌های دیگر:\n- [A] در شکم است.\n- [C] مهم‌ترین عضو لنفاوی شکم است.',
     'همه اندام‌های زیر در شکم هستند به جز:', 'B'),
    ('a header that speaks of the answer concludes, it does not reject',
     'گزینه‌های [A] و [D] نادرست هستند. پس پاسخ صحیح این است که:\n\n[B] : کیسه صفرا\n\n[C] : طحال', None, 'multiple'),
    ('a translation pipeline: «therefore the answer is C»', 'طحال در سمت چپ است. بنابراین پاسخ این است C . پایان', None, 'C'),
    ('«the answer is letter B»', 'کیسه صفرا زیر کبد است. بنابراین پاسخ حرف ب .', None, 'B'),
    ('«the answer C is»', 'بنابراین، پاسخ C است.', None, 'C'),
    ('«answer B» as a name in a list is no cue', '* **پاسخ A:** آپاندیس\n* **پاسخ B:** کیسه صفرا', None, 'invalid'),
    ('an answer slot left empty: «the answer is: END.»', 'گزینه الف بیشترین ارتباط را دارد. بنابراین پاسخ این است: پایان .', None, 'invalid'),
    ('Persian punctuation is not part of a word: «،جواب صحیح» is cued', 'گزینه [A] و [B] را دیدیم. درنهایت ،جواب صحیح گزینه [B] است.', None, 'B'),
    ('a concessive clause does not choose its option', 'لذا گزینه C پاسخ کاملی است، اگرچه گزینه B نیز تا حدی درست است.', None, 'C'),
    ('«the only option that ..., is C»', 'گزینه [A] و [B] را دیدیم. تنها گزینه‌ای که در سمت چپ شکم است، **گزینه C** است.', None, 'C'),
    ('«the option that is not ..., is B» when the question asks for the exception', 'گزینه [A] را دیدیم. گزینه‌ای که در شکم نیست، **گزینه (B)** است.',
     'همه اندام‌های زیر در شکم هستند به جز:', 'B'),
    ('a straight answer listing two options one per line names several', 'موارد زیر:\n\n[A]: آپاندیس.\n[B]: کیسه صفرا.\n\nهر دو در شکم‌اند.', None, 'multiple'),
    ('... listing all four is a review, not an answer', '[A] آپاندیس: پایین.\n[B] کیسه صفرا: زیر کبد.\n[C] طحال: چپ.\n[D] مثانه: لگن.', None, 'invalid'),
    ('«about each option:» introduces a review, not an answer', 'پاسخ صحیح **[B]** است.\n\nدر مورد هر گزینه:\n* **[A]** در پایین شکم است.\n* **[C]** در سمت چپ است.', None, 'B'),
    ('«[آ]»: a translated answer transliterates A', 'بنابراین، پاسخ [آ] است.', None, 'A'),
])
def test_rules_that_generalise(rule, text, question, expected):
    assert extract_choice(text, question) == expected, rule


def test_tiers_decide_and_can_switch_a_rule_off():
    ev = answer_evidence('پاسخ صحیح طحال است.', options=OPTS)                       # "the correct answer is the spleen"
    assert [(e.rule, e.answer) for e in ev] == [('option text', 'C'), ('opening option text', 'C')]
    assert decide(ev) == 'C' == deciding(ev).answer and decide(ev, {**RULE_TIERS, 'option text': None, 'opening option text': None}) == 'invalid'
    assert set(RULE_TIERS) >= {e.rule for e in ev} and set(RULE_TIERS) >= set(ANSWER_CUES) | set(EXCEPT_CUES)
    assert extract_choice('پاسخ صحیح طحال است.', options=OPTS, tiers={**RULE_TIERS, 'option text': None, 'opening option text': None}) == 'invalid'


def test_select_tiers_switches_off_what_misleads_and_keeps_what_helps():
    ev = [[Evidence(0, 5, 'answer is', 'A')], [Evidence(4, 0, 'option text', 'D')], [Evidence(4, 0, 'option text', 'B')],
          [Evidence(2, 0, 'only option named', 'C')]]
    labels, cells = ['A', 'invalid', 'invalid', 'C'], [('s', 'm', 'x'), ('s', 'm', 'x'), ('s', 'm', 'y'), ('s', 'm', 'y')]
    tiers = select_tiers(ev, labels, cells)
    assert tiers['option text'] is None and tiers['answer is'] == 0 and tiers['only option named'] is not None
    assert [decide(e, tiers) for e in ev] == ['A', 'invalid', 'invalid', 'C']
    assert tiers['english'] == RULE_TIERS['english']                               # a rule that reads nothing here is left alone


# --- the optional LLM reader, against a scripted OpenAI-compatible server on 127.0.0.1 -------------------------------------------

UNCLEAR = 'شکستگی معمولاً با گزینه [B] همراه است.'    # "a fracture usually goes with option B": read only because it is the only option named


def test_llm_reads_only_what_the_rules_call_ambiguous_and_caches_it(serve, tmp_path):
    from gaokerena.llm import OpenAIChat
    srv = serve(('ok', 'C'))
    chat = OpenAIChat(srv.url, 'extractor', cache_dir=tmp_path)
    assert extract_with_llm(chat, 'پاسخ صحیح گزینه [B] است.', options=OPTS) == 'B' and srv.requests == []   # trusted: no call
    assert extract_with_llm(chat, '', options=OPTS) == 'invalid' and srv.requests == []                     # nothing to read
    assert reading_kind(answer_evidence(UNCLEAR)) not in TRUSTED_READINGS
    assert extract_with_llm(chat, UNCLEAR, 'کدام اندام؟', OPTS) == 'C' and len(srv.requests) == 1
    prompt = srv.requests[0]['body']['messages'][0]['content']
    assert UNCLEAR in prompt and '[C] : طحال' in prompt and 'کدام اندام؟' in prompt
    assert srv.requests[0]['body']['temperature'] == 0.0
    assert extract_with_llm(OpenAIChat(srv.url, 'extractor', cache_dir=tmp_path), UNCLEAR, 'کدام اندام؟', OPTS) == 'C'
    assert len(srv.requests) == 1                                                  # the second run is answered from the disk cache


@pytest.mark.parametrize('reply, expected', [('B', 'B'), ('The answer chooses d.', 'D'), ('none', 'none'), ('MULTIPLE', 'multiple'),
                                             ('I cannot tell', 'invalid'), ('', 'invalid')])
def test_llm_replies_are_parsed_to_one_outcome(serve, tmp_path, reply, expected):
    from gaokerena.llm import OpenAIChat
    assert llm_choice(OpenAIChat(serve(('ok', reply)).url, 'x', cache_dir=tmp_path), UNCLEAR) == expected


def test_leave_one_out_measures_the_llm_on_the_held_out_ambiguous_rows(serve, tmp_path):
    "An oracle server (it answers the hand label of the text it is shown) lifts exactly the held-out ambiguous rows to the ceiling."
    from gaokerena.llm import OpenAIChat
    clear = 'پاسخ صحیح گزینه [A] است.'                                        # "the correct answer is A": trusted once seen 20 times
    unclear = [f'شکستگی نوع {i} معمولاً با گزینه [B] همراه است.' for i in range(5)]   # "fracture type i usually goes with B"
    df = pd.DataFrame({'style': 'straight', 'model': 'm', 'benchmark': ['x'] * 20 + ['y'] * 13, 'generation': [clear] * 28 + unclear,
                       'label': ['A'] * 28 + ['B', 'C', 'invalid', 'B', 'invalid'], 'question': 'کدام اندام؟'})
    df['options'] = [OPTS] * len(df)
    truth = dict(zip(df.generation, df.label))
    srv = serve(lambda body: ('ok', next(l for t, l in truth.items() if t in body['messages'][0]['content'])))
    table, chosen = leave_one_out(df, all_evidence(df), llm=OpenAIChat(srv.url, 'oracle', cache_dir=tmp_path))
    y = table.loc[('straight', 'm', 'y')]
    assert y.n == 13 and y.ambiguous == round(100 * 5 / 13, 1) and y.in_sample == round(100 * 10 / 13, 1) and y.clear == 100
    assert y.with_llm == y.ceiling == 100 and chosen['y']['trusted'] == ['answer is']
    asked = [r['body']['messages'][0]['content'] for r in srv.requests]
    assert sum(any(u in a for a in asked) for u in unclear) == 5                   # each ambiguous row of y was asked about
    assert len(asked) == 6    # with x held out nothing is trusted (y has 13 rows): x's 20 equal texts are asked once, then cached


# --- on the authors' published sheets ---------------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def published(real_data):
    "Every published straight and CoT generation of the seven systems, with its evidence read once."
    gens = published_generations(real_data, (*PAPER_SYSTEMS, 'persianmind', *MEDMOBILE))
    gens['evidence'] = all_evidence(gens)
    gens['extracted'] = [decide(e) for e in gens.evidence]
    return gens


def test_agreement_with_the_authors_hand_labels(published):
    gens = published[published.model.isin(PAPER_SYSTEMS)]
    assert set(gens.model) == set(PAPER_SYSTEMS) and len(gens) == 13520, gens.groupby(['style', 'model']).size()
    table, confusion = extraction_agreement(gens)
    with pd.option_context('display.width', 200, 'display.max_rows', 200):
        print(table.xs('all', level='benchmark'), table, confusion, sep='\n\n')
    overall = table.loc[('all', 'all', 'all'), 'agreement']
    assert overall >= 98.9, f'agreement with the hand labels {overall:.2f}% < 98.9% (it was 98.8% before the rules that generalise)'


def test_every_cell_with_one_benchmark_held_out(published):
    "The goal per cell (prompt style, model, benchmark): 97% for the paper models, 95% for MedMobile; what is reached where not, and why."
    table, chosen = leave_one_out(published, list(published.evidence))
    with pd.option_context('display.width', 200, 'display.max_rows', 200):
        print(table, pd.DataFrame(chosen).T, sep='\n\n')
    assert len(table) == 40 and table.n.sum() == 15656
    model = table.index.get_level_values('model')
    paper, medmobile = table[model.isin(PAPER_SYSTEMS)], table[model.isin(MEDMOBILE)]
    # the shipped rules: >= 97% on every paper-model cell but one, Qwen2.5's college biology (5 of 136: exception questions
    # answered by listing the true options, a text naming several, and two that quote an option's words where the authors saw none)
    short = paper[paper.in_sample < 97]
    assert list(short.index) == [('straight', 'qwen2.5-7b', 'college_biology')] and short.in_sample.iloc[0] >= 96.3
    assert paper.in_sample.mean() >= 98.8
    # MedMobile (goal 95%): parsinlu reaches 92.6-94.4, gemma2b 83-89 (half-translated texts the authors labelled inconsistently)
    assert medmobile.xs('medmobile-parsinlu', level='model').in_sample.min() >= 92.5
    assert medmobile.xs('medmobile-gemma2b', level='model').in_sample.min() >= 83
    # tiers selected on the other three benchmarks generalise worse than the hand-set ones for the paper models: the shipped stay
    assert paper.selected.mean() < paper.in_sample.mean() and paper.selected.min() < 97
    # what the rules call ambiguous is a small share of the paper models' CoT, and a perfect reader of it would reach every goal
    # but gemma2b's college biology (the LLM reader's own agreement cannot be measured here)
    assert table.xs('cot', level='style').ambiguous.max() <= 11
    assert paper.ceiling.min() >= 98.5 and medmobile.xs('medmobile-parsinlu', level='model').ceiling.min() >= 97
    assert sorted(medmobile[medmobile.ceiling < 95].index) == [('straight', 'medmobile-gemma2b', 'college_biology')]
    # the kinds of reading trusted on the other benchmarks are nearly the shipped set, whichever benchmark is held out
    assert all(len(set(c['trusted']) ^ set(TRUSTED_READINGS)) <= 4 for c in chosen.values())


def test_trusted_readings_follow_from_the_hand_labels(published):
    assert tuple(trusted_readings(list(published.evidence), list(published.label))) == TRUSTED_READINGS
