"The loaders on the authors' real files (skipped with a reason when ../shared/data is absent)."
from collections import Counter
import pytest
from test_data_measure import WordTokenizer
from gaokerena.data import DataError, SUBJECTS, load_rows, referee_filter

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


def test_medmcqa_gold_zero_based_and_referee_ratings(real_data):
    tr = load_rows('medmcqa/translated', real_data)
    assert tr.read == 2000 and len(tr.rows) == 1999
    (img,) = tr.quarantined
    assert (img['file'].endswith('translated_qas_part1.xlsx'), img['row'], img['rule']) == (True, 818, 'same_options')
    # the gold counts of the raw 0-3 column (part 1: 302/246/234/218, part 2: 249/275/253/223), less the image question (0)
    assert Counter(r['gold'] for r in tr.rows) == {'A': 302 + 249 - 1, 'B': 246 + 275, 'C': 234 + 253, 'D': 218 + 223}
    both5 = referee_filter(tr.rows)
    fl = load_rows('medmcqa/filtered', real_data)
    assert fl.read == 821 + 807 and len(fl.rows) == 1627 and [q['row'] for q in fl.quarantined] == [667]
    assert {r['id'] for r in both5} == {r['id'] for r in fl.rows}
    gold = {r['id']: r['gold'] for r in tr.rows}
    assert all(gold[r['id']] == r['gold'] for r in fl.rows)
    assert Counter(w['rule'] for w in tr.warnings) == {'duplicate_options': 5, 'repeated_row': 3}


def test_published_pairs_part22_repeats_ids(real_data):
    res = load_rows('pairs/published', real_data)
    assert len(res.rows) == 497 + 466 + 754 and not res.quarantined
    reps = [w for w in res.warnings if w['rule'] == 'repeated_id']
    by_file = Counter(w['file'].rsplit('_', 1)[-1] for w in reps)
    assert by_file == {'part22.xlsx': 193, 'part2.xlsx': 1}
    per_id = Counter(r['id'] for r in res.rows if r['part'] == 'part22')
    assert len(per_id) == 561 and Counter(per_id.values()) == {1: 368, 2: 193}  # 193 questions with two pairs each
    assert {r['gold'] for r in res.rows} == {'A', 'B', 'C', 'D'}


def test_qa_sets(real_data):
    sizes = {'kqa': 201, 'mf3qa/dev': 2000, 'mf3qa/test': 2000, 'forum/niniban/crawled': 9728, 'forum/niniban/filtered': 5405,
             'forum/dryab/filtered': 1501, 'forum/isovisit/crawled': 85}
    for name, n in sizes.items():
        res = load_rows(name, real_data)
        assert len(res.rows) == n and not res.quarantined, name
    assert Counter(r['source'] for r in load_rows('mf3qa/test', real_data).rows) == {'doctor-yab.ir': 1711, 'kqa': 201, 'isovisit.com': 88}
    crawled = load_rows('forum/niniban/crawled', real_data)
    assert Counter(w['rule'] for w in crawled.warnings) == {'repeated_row': 539}


def test_hub_only_datasets_say_where_they_are(real_data):
    for name in ('corpus', 'mf3qa/train'):
        with pytest.raises(DataError, match='published on the hub'): load_rows(name, real_data)


def test_unprepared_run_reads_its_data_dir_not_the_sample(real_data, tmp_path):
    "A chapter run alone with data_dir (00_data not run) gets the authors' benchmarks, not the bundled sample."
    from gaokerena.config import run_context
    from gaokerena.data import load_prepared
    ctx = run_context('tiny', tmp_path, real_data)
    mcq = load_prepared(ctx, 'mcq')
    assert len(mcq) == 1257 and Counter(r['subject'] for r in mcq)['ibmsee'] == 168
    assert not (tmp_path/'data').exists()


def test_prepare_with_data_dir_writes_named_datasets(real_data, tmp_path):
    from gaokerena.config import run_context
    from gaokerena.data import load_prepared, prepare_data, read_jsonl
    ctx = run_context('tiny', tmp_path, real_data)
    summary = prepare_data(ctx, WordTokenizer())
    assert {k: v['kept'] for k, v in summary.items()} == {'corpus': 36, 'qa_train': 2000, 'qa_test': 2000, 'mcq': 1257, 'kopp_larger': 1710,
                                                         'kqa': 201, 'medmcqa': 1627, 'pairs': 1717}
    assert 'standing in for mf3qa/train' in summary['qa_train']['source'] and summary['medmcqa']['reasons'] == {'same_options': 1}
    assert summary['qa_train']['normalised'] and not summary['mcq']['normalised'] 
    pairs = load_prepared(ctx, 'pairs')
    assert summary['pairs']['tokens_chosen'] == sum(len(r['chosen'].split()) for r in pairs)
    assert summary['pairs']['tokens_rejected'] == sum(len(r['rejected'].split()) for r in pairs) > summary['pairs']['tokens_chosen']
    assert Counter(r['subject'] for r in load_prepared(ctx, 'mcq'))['ibmsee'] == 168
    (q,) = read_jsonl(tmp_path/'data'/'medmcqa.quarantined.jsonl')
    assert q['row'] == 667 and q['file'].endswith('filtered_qas_part1.xlsx')
    assert len(read_jsonl(tmp_path/'data'/'pairs.warnings.jsonl')) == 194


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
