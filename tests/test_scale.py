"PersianMedQA (arXiv 2506.00250): its loader on a local copy of the hub layout its card describes, and its place in chapters 02 and 04."
from collections import Counter
import pytest
from test_data_hub import card, own_datasets_cache, parquet  # noqa: F401 (an autouse fixture: a datasets cache per test)
from gaokerena.config import run_context
from gaokerena.data import LETTERS, DataError, load_rows, load_sample, prepare_data, read_jsonl
from gaokerena.evaluate import load_benchmarks, score_table

SPECIALTIES = ('Cardiology', 'Radiology', 'Pharmacology', 'Internal Medicine', 'General Surgery', 'Pediatrics', 'Obstetrics and Gynecology',
               'Neurology', 'Psychiatry', 'Dermatology', 'Ophthalmology', 'Otolaryngology', 'Urology', 'Orthopedics', 'Anesthesiology',
               'Emergency Medicine', 'Infectious Diseases', 'Pathology', 'Medical Statistics', 'Nephrology', 'Endocrinology',
               'Gastroenterology', 'Hematology')
TEST = 5236   # the paper's test split


def pmqa_rows(n: int, split: str) -> list[dict]:
    "`n` questions as the card shows them, each in Persian and in English (its `language` column), specialties in turn."
    rows = []
    for i in range(n):
        spec = SPECIALTIES[i % len(SPECIALTIES)]
        for lang, q, opts in (('fa', f'بیمار {i} با درد قفسه سینه مراجعه کرده است؛ اقدام درست کدام است؟', [f'گزینه {k}' for k in range(4)]),
                              ('en', f'Patient {i} presents with chest pain; what is the right step?', [f'option {k}' for k in range(4)])):
            # "Patient <i> presents with chest pain; which step is right?" / "option <k>"
            rows.append({'id': f'PMQA_{split}_{i:06d}', 'question': q, 'options': opts, 'answer_idx': i % 4, 'specialty': spec,
                         'is_clinical': True, 'patient_age': 48, 'patient_gender': 'male', 'language': lang})
    return rows


def persianmedqa(folder, test: int = TEST):
    "A local copy of PersianMedQA's hub layout: train, validation and test splits of parquet files."
    card(folder, {'default': {s: parquet(folder, s, pmqa_rows(n, s)) for s, n in (('train', 46), ('validation', 23), ('test', test))}})
    return folder


def test_persianmedqa_loads_its_persian_test_split_per_specialty(tmp_path):
    ctx = run_context('tiny', tmp_path/'run', overrides={'sources.persianmedqa': str(persianmedqa(tmp_path/'pmqa'))})
    res = load_rows('persianmedqa', ctx)
    assert res.read == len(res.rows) == TEST and not res.quarantined
    assert all(r['question'].startswith('بیمار') and r['id'].startswith('PMQA_test_') for r in res.rows), 'Persian rows of the test split'
    subjects = Counter(r['subject'] for r in res.rows)
    assert len(subjects) == 23 and subjects['persianmedqa/cardiology'] == 228 and 'persianmedqa/obstetrics_and_gynecology' in subjects
    assert [r['gold'] for r in res.rows[:5]] == ['A', 'B', 'C', 'D', 'A'], 'answer_idx counts from 0'
    assert res.rows[2]['options'] == dict(zip(LETTERS, ('گزینه 0', 'گزینه 1', 'گزینه 2', 'گزینه 3')))


def test_a_test_split_unlike_the_papers_is_an_error(tmp_path):
    ctx = run_context('tiny', tmp_path/'run', overrides={'sources.persianmedqa': str(persianmedqa(tmp_path/'pmqa', TEST - 1))})
    with pytest.raises(DataError, match=r'5235 rows, but persianmedqa has 5236 in the papers.*\[hub\] persianmedqa'):
        load_rows('persianmedqa', ctx)
    with pytest.raises(DataError, match=r"no split 'dev'; found splits \['train', 'validation', 'test'\]"):
        load_rows('persianmedqa', run_context('tiny', tmp_path/'run', overrides={'sources.persianmedqa': str(tmp_path/'pmqa'),
                                                                                  'hub.persianmedqa': 'auto:dev'}))


def test_other_column_names_are_a_setting(tmp_path):
    "The card's schema is what we could read from here: other names are mapped in [hub_columns] persianmedqa."
    repo = tmp_path/'pmqa'
    rename = {'question': 'Question', 'options': 'choices', 'answer_idx': 'label', 'specialty': 'category'}
    card(repo, {'default': {'test': parquet(repo, 'test', [{rename.get(k, k): v for k, v in r.items()} for r in pmqa_rows(TEST, 'test')])}})
    over = {'sources.persianmedqa': str(repo)}
    assert Counter(r['subject'] for r in load_rows('persianmedqa', run_context('tiny', tmp_path/'run', overrides=over)).rows) == \
        {'persianmedqa/other': TEST}, 'an unknown specialty column: one group, named so'
    res = load_rows('persianmedqa', run_context('tiny', tmp_path/'run', overrides={**over, 'hub_columns.persianmedqa': 'category=subject'}))
    assert len({r['subject'] for r in res.rows}) == 23 and res.rows[1]['gold'] == 'B'


def test_persianmedqa_joins_the_benchmarks_of_chapters_02_and_04_when_asked(tmp_path):
    over = {'sources.persianmedqa': str(persianmedqa(tmp_path/'pmqa'))}
    off = run_context('tiny', tmp_path/'off', overrides=over)
    assert not any(b.startswith('persianmedqa') for b in load_benchmarks(off)) and 'persianmedqa' not in prepare_data(off)
    ctx = run_context('tiny', tmp_path/'on', overrides={**over, 'profile.persianmedqa_questions': 46})
    summary = prepare_data(ctx)
    assert summary['persianmedqa']['kept'] == TEST and len(read_jsonl(tmp_path/'on'/'data'/'persianmedqa.jsonl')) == TEST
    benchmarks = load_benchmarks(ctx)
    pmqa = {b: qs for b, qs in benchmarks.items() if b.startswith('persianmedqa/')}
    assert len(pmqa) == 23 and {len(qs) for qs in pmqa.values()} == {2}, '46 questions spread over the 23 specialties'
    assert sum(len(qs) for b, qs in benchmarks.items() if b not in pmqa) == len(load_sample('mcq')), "the sample's own benchmarks stay"
    rows = [{'benchmark': b, 'qid': q['id'], 'gold': q['gold'], 'answer': 'A'} for b, qs in benchmarks.items() for q in qs]
    table = score_table(rows, n_boot=50)
    assert set(pmqa) <= set(table) and table['persianmedqa/cardiology']['n'] == 2
