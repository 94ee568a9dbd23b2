"The loaders on the authors' real files (skipped with a reason when the authors' data is absent)."
import re
from collections import Counter
from pathlib import Path
import pytest
from test_data_measure import WordTokenizer
from gaokerena.rows import LETTERS, DataError
from gaokerena.sources import SUBJECTS, inventory, load_rows, read_table
from gaokerena.translate import referee_filter

SIZES = {'anatomy': 135, 'medical_genetics': 100, 'college_medicine': 173, 'clinical_knowledge': 265,
         'professional_medicine': 272, 'college_biology': 144}


@pytest.mark.parametrize('subject', SUBJECTS)
def test_mmlu_subjects_keep_the_papers_denominators(real_data, subject):
    res = load_rows(f'mmlu/{subject}', real_data)
    assert len(res.rows) == SIZES[subject] and not res.quarantined
    assert {r['subject'] for r in res.rows} == {subject} and Counter(r['gold'] for r in res.rows).keys() == {'A', 'B', 'C', 'D'}
    expected = {'medical_genetics': [(31, 'option D', 'number_as_text')], 'college_medicine': [(64, 'options', 'duplicate_options')],
                'professional_medicine': [(88, 'options', 'duplicate_options')]}.get(subject, [])
    assert [(w['row'], w['field'], w['rule']) for w in res.warnings] == expected


def test_kopp_168_with_the_two_duplicated_gold_options(real_data):
    res = load_rows('ibmsee', real_data)
    assert len(res.rows) == 168 and not res.quarantined
    assert [(w['row'], w['rule']) for w in res.warnings] == [(128, 'duplicate_options'), (165, 'duplicate_options')]
    assert all('gold answer is one of the duplicates' in w['problem'] for w in res.warnings)
    assert {r['source'] for r in res.rows} == {'پزشکی شهریور 402'}


def test_kopp_larger(real_data):
    res = load_rows('kopp_larger', real_data)
    assert len(res.rows) == 1710 and not res.quarantined
    rules = Counter(w['rule'] for w in res.warnings)
    assert rules == {'duplicate_options': 11, 'repeated_row': 2}
    assert len({r['source'] for r in res.rows}) == 10


def test_medmcqa_every_part_gold_zero_based_and_referee_ratings(real_data):
    tr = load_rows('medmcqa/translated', real_data)
    assert tr.read == 22000 and len(tr.rows) == 21994 and len({f for f, _ in tr.where}) == 22
    assert [(Path(q['file']).name, q['row'], q['rule']) for q in tr.quarantined] == [
        ('translated_qas_part1.xlsx', 818, 'same_options'), ('translated_qas_part4.xlsx', 263, 'same_options'),
        ('translated_qas_part4.xlsx', 386, 'same_options'), ('translated_qas_part13.xlsx', 3, 'same_options'),
        ('translated_qas_part16.xlsx', 535, 'same_options'), ('translated_qas_part16.xlsx', 690, 'same_options')]
    # the raw 0-3 column of every part, read without the loader, less the quarantined rows: MedMCQA's 0 is option A
    raw = Counter(LETTERS[int(r['Correct_answer'])] for f in sorted({f for f, _ in tr.where}) for _, r in read_table(f))
    raw.subtract(q['data']['gold'] for q in tr.quarantined)
    assert Counter(r['gold'] for r in tr.rows) == +raw
    both5 = referee_filter(tr.rows)
    fl = load_rows('medmcqa/filtered', real_data)
    assert fl.read == 17885 and len(fl.rows) == 17880 and {q['rule'] for q in fl.quarantined} == {'same_options'}
    assert len(both5) == 17883 and {r['id'] for r in fl.rows} <= {r['id'] for r in both5}
    gold = {r['id']: r['gold'] for r in tr.rows}
    assert all(gold[r['id']] == r['gold'] for r in fl.rows)
    assert Counter(w['rule'] for w in tr.warnings) == {'duplicate_options': 81, 'text_as_number': 4, 'rating': 4, 'repeated_row': 146}


def test_published_pairs_every_part_with_their_id_quirks(real_data):
    res = load_rows('pairs/published', real_data)
    assert res.read == 11165 and len(res.rows) == 11163
    assert [(Path(q['file']).name, q['row'], q['field']) for q in res.quarantined] == [
        ('prefered_rejected_pairs_part7.xlsx', 36, 'chosen'), ('prefered_rejected_pairs_part7.xlsx', 274, 'chosen')]
    parts = Counter(r['part'] for r in res.rows)
    assert len(parts) == 22 and parts['part22'] == 754 and parts['part7'] == 478
    joined = [w for w in res.warnings if w['rule'] == 'question_as_id']
    assert len(joined) == 4960 and {w['data']['part'] for w in joined} == {f'part{p}' for p in range(2, 12)}
    assert sum('no question has that text' in w['problem'] for w in joined) == 1
    uuid = re.compile(r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}')
    assert sum(not uuid.fullmatch(r['id']) for r in res.rows) == 1, 'every other pair carries a MedMCQA id'
    reps = [w for w in res.warnings if w['rule'] == 'repeated_id']
    assert len(reps) == 203 and Counter(w['file'].rsplit('_', 1)[-1] for w in reps)['part22.xlsx'] == 193
    per_id = Counter(r['id'] for r in res.rows if r['part'] == 'part22')
    assert len(per_id) == 561 and Counter(per_id.values()) == {1: 368, 2: 193}  # 193 questions with two pairs each
    assert {r['gold'] for r in res.rows} == {'A', 'B', 'C', 'D'}
    filtered = {r['id'] for r in load_rows('medmcqa/filtered', real_data).rows}
    assert sum(r['id'] in filtered for r in res.rows) > 11100


def test_qa_sets(real_data):
    sizes = {'kqa': 201, 'mf3qa/dev': 2000, 'mf3qa/test': 2000, 'forum/niniban/crawled': 9728, 'forum/niniban/filtered': 5405,
             'forum/dryab/filtered': 1501, 'forum/isovisit/crawled': 85}
    for name, n in sizes.items():
        res = load_rows(name, real_data)
        assert len(res.rows) == n and not res.quarantined, name
    assert Counter(r['source'] for r in load_rows('mf3qa/test', real_data).rows) == {'doctor-yab.ir': 1711, 'kqa': 201, 'isovisit.com': 88}
    crawled = load_rows('forum/niniban/crawled', real_data)
    assert Counter(w['rule'] for w in crawled.warnings) == {'repeated_row': 539}


def test_the_copy_says_what_it_lacks_and_how_to_get_it(real_data):
    "The shared copy leaves out files over 4 MiB (MF3QA train.xlsx) and the corpus: loading them says which command gets them."
    have = inventory(real_data)
    assert {n: have[n] for n in ('medmcqa/translated', 'medmcqa/filtered', 'pairs/published', 'forum/drhast/filtered')} == {
        'medmcqa/translated': 22, 'medmcqa/filtered': 22, 'pairs/published': 22, 'forum/drhast/filtered': 3}
    for name, hint in (('corpus', '--corpus'), ('mf3qa/train', 'A fresh clone')):
        if have[name]: continue
        with pytest.raises(DataError, match=f'no such file. .*{hint}'): load_rows(name, real_data)


def test_unprepared_run_reads_its_data_dir_not_the_sample(real_data, tmp_path):
    "A chapter run alone with data_dir (00_data not run) gets the authors' benchmarks, not the bundled sample."
    from gaokerena.config import run_context
    from gaokerena.sources import load_prepared
    ctx = run_context('tiny', tmp_path, real_data)
    mcq = load_prepared(ctx, 'mcq')
    assert len(mcq) == 1257 and Counter(r['subject'] for r in mcq)['ibmsee'] == 168
    assert not (tmp_path/'data').exists()


def test_prepare_with_data_dir_writes_named_datasets(real_data, tmp_path):
    from gaokerena.config import run_context
    from gaokerena.sources import load_prepared, prepare_data
    from gaokerena.rows import read_jsonl
    ctx = run_context('tiny', tmp_path, real_data)
    summary = prepare_data(ctx, WordTokenizer())
    assert {k: v['kept'] for k, v in summary.items()} == {'corpus': 36, 'qa_train': 2000, 'qa_test': 2000, 'mcq': 1257, 'kopp_larger': 1710,
                                                         'kqa': 201, 'medmcqa': 17880, 'pairs': 11163}
    assert 'standing in for mf3qa/train' in summary['qa_train']['source'] and 'standing in for corpus' in summary['corpus']['source']
    assert summary['medmcqa']['reasons'] == {'same_options': 5} and summary['pairs']['reasons'] == {'empty': 2}
    assert summary['qa_train']['normalised'] and not summary['mcq']['normalised'] 
    pairs = load_prepared(ctx, 'pairs')
    assert summary['pairs']['tokens_chosen'] == sum(len(r['chosen'].split()) for r in pairs)
    assert summary['pairs']['tokens_rejected'] == sum(len(r['rejected'].split()) for r in pairs) > summary['pairs']['tokens_chosen']
    assert Counter(r['subject'] for r in load_prepared(ctx, 'mcq'))['ibmsee'] == 168
    q = read_jsonl(tmp_path/'data'/'medmcqa.quarantined.jsonl')
    assert len(q) == 5 and (q[0]['row'], Path(q[0]['file']).name) == (667, 'filtered_qas_part1.xlsx')
    assert Counter(w['rule'] for w in read_jsonl(tmp_path/'data'/'pairs.warnings.jsonl')) == {'question_as_id': 4960, 'repeated_id': 203}


def test_niniban_cleaning_agrees_with_the_authors(real_data):
    "clean_forum on the crawl vs the authors' filtered file; measured 0.975 / 0.965 / 0.991 (floors below)."
    from gaokerena.data import clean_forum, keep_scores
    crawled = load_rows('forum/niniban/crawled', real_data).rows
    filtered = {(r['question'], r['answer']) for r in load_rows('forum/niniban/filtered', real_data).rows}
    first, authors = set(), []
    for r in crawled:
        k = (r['question'], r['answer'])
        authors.append(k in filtered and k not in first); first.add(k)
    reasons = clean_forum(crawled)
    s = keep_scores([x is None for x in reasons], authors)
    assert (s['rows'], s['reference_kept']) == (9728, 5405)
    assert 5400 <= s['kept'] <= 5700 and s['agreement'] >= 0.97 and s['precision'] >= 0.96 and s['recall'] >= 0.985, s
    assert Counter(reasons)['short'] > 3500


def test_drhast_the_authors_kept_pairs_and_our_cleaning(real_data):
    "drhast's cleaned pairs (f1-f3, 14,821): clean_forum keeps 0.964 of what the authors kept (measured; floor below)."
    from gaokerena.data import clean_forum
    res = load_rows('forum/drhast/filtered', real_data)
    assert res.read == len(res.rows) == 14821 and {r['source'] for r in res.rows} == {'drhast.com'}
    reasons = Counter(clean_forum(res.rows))
    assert reasons[None] / 14821 >= 0.96 and reasons['short'] < 500, reasons
