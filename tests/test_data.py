"Loaders and validation on synthetic files written into tmp_path (no real data needed)."
import dataclasses, json, math
from pathlib import Path
import pytest
from gaokerena.config import run_context
from gaokerena.sources import DATASETS, load_rows, row_issues, validate
from gaokerena.rows import DataError, LETTERS, load_sample, read_jsonl, write_jsonl

MMLU = 'gaokerena-v/dataset/MMLU_fa/mmlu-anatomy_fa.xlsx'
KOPP = 'gaokerena-v/dataset/KOPP/kopp.xlsx'
MED = 'gaokerena-r/dataset/medmcqa_translation/translated_qas_part{}.xlsx'
PAIRS = 'gaokerena-r/dataset/pairs/prefered_rejected_pairs_part{}.xlsx'
KQA = 'gaokerena-v/dataset/KQA_fa/questions_w_answers\u0640fa.jsonl'
MMLU_HEAD = ['question', 'option1', 'option2', 'option3', 'option4', 'answer', 'Source']
MED_HEAD = ['id', 'Question', 'Option1', 'Option2', 'Option3', 'Option4', 'Expression', 'Correct_answer', 'choice_type',
            'subject_name', 'topic_name', 'gpt-4.1-mini_rate', 'grok-3-mini_rate']


def write_xlsx(path: Path, header, rows):
    "A one-sheet workbook with `header` in row 1 and `rows` below (None = an empty cell)."
    from openpyxl import Workbook
    path.parent.mkdir(parents=True, exist_ok=True)
    wb = Workbook()
    ws = wb.active
    ws.append(header)
    for r in rows: ws.append(r)
    wb.save(path)
    return path


def mcq(q, opts=('الف', 'ب', 'ج', 'د'), gold=1, src='mmlu-anatomy'):
    return [q, *opts, gold, src]


@pytest.fixture
def repo(tmp_path):
    "An empty folder laid out like the authors' two repositories."
    (tmp_path/'gaokerena-v').mkdir(); (tmp_path/'gaokerena-r').mkdir()
    return tmp_path


def test_mmlu_rows_rules_and_spreadsheet_row_numbers(repo):
    write_xlsx(repo/MMLU, MMLU_HEAD, [
        mcq('سؤال یک'),                                   # row 2: fine
        mcq('سؤال دو', gold=5),                           # row 3: gold out of range
        mcq('سؤال سه', opts=('x', 'x', 'y', 'z'), gold=2),  # row 4: duplicated options incl. the gold: kept, warned
        mcq('   ', gold=3),                               # row 5: empty question
        mcq('سؤال پنج', opts=('x', None, 'y', 'z')),      # row 6: empty option B
        mcq('سؤال شش', opts=('x', 'y', 'z', 7)),          # row 7: a bare number as option D: kept, warned
        mcq('سؤال هفت', opts=('q',) * 4),                 # row 8: four identical options
        mcq('سؤال هشت', gold='3'),                        # row 9: gold as text '3': kept, warned
        mcq('سؤال یک'),                                   # row 10: repeats row 2: kept, warned
    ])
    res = load_rows('mmlu/anatomy', repo)
    assert res.kind == 'mcq' and res.source == str(repo)
    assert [(q['row'], q['field'], q['rule']) for q in res.quarantined] == [
        (3, 'gold', 'gold_range'), (5, 'question', 'empty'), (6, 'option B', 'empty'), (8, 'options', 'same_options')]
    assert all(q['file'].endswith('mmlu-anatomy_fa.xlsx') for q in res.quarantined)
    assert res.read == 9 and len(res.rows) == 5
    warn = {(w['row'], w['rule']) for w in res.warnings}
    assert warn == {(4, 'duplicate_options'), (7, 'number_as_text'), (9, 'text_as_number'), (10, 'repeated_row')}
    dup = next(w for w in res.warnings if w['row'] == 4)
    assert 'B repeats A' in dup['problem'] and 'gold answer is one of the duplicates' in dup['problem']
    rows = {r['question']: r for r in res.rows}
    assert rows['سؤال یک']['gold'] == 'A' and rows['سؤال هشت']['gold'] == 'C' and rows['سؤال شش']['options']['D'] == '7'
    assert rows['سؤال یک']['subject'] == 'anatomy' and res.rows[0]['id'] == 'mmlu/anatomy:2'
    assert all(not row_issues(r, 'mcq') or row_issues(r, 'mcq')[0][1] == 'duplicate_options' for r in res.rows)
    assert res.summary()['reasons'] == {'gold_range': 1, 'empty': 2, 'same_options': 1}


def test_kopp_columns_with_spaces(repo):
    write_xlsx(repo/KOPP, ['Question', 'Option1', 'Option2', 'Option3', 'Option4', 'Correct answer', 'Topic', 'Source'],
               [['س', 'a', 'b', 'c', 'd', 4, 'آناتومی', 'پزشکی شهریور 402']])
    (row,) = load_rows('ibmsee', repo).rows
    assert (row['gold'], row['subject'], row['source']) == ('D', 'ibmsee', 'پزشکی شهریور 402')


def test_medmcqa_gold_is_zero_based_and_ratings_mixed(repo):
    base = ['q', 'a', 'b', 'c', 'd', 'توضیح', 0, 'single', 'Anatomy', None, 5, 5]
    write_xlsx(repo/MED.format(1), MED_HEAD, [
        ['id0', *base],
        ['id3', *base[:6], 3, *base[7:]],
        ['id4', *base[:6], 4, *base[7:]],              # 4 is out of MedMCQA's 0-3
        ['idna', *base[:10], 'Na', '5'],                # mixed rating types
    ])
    write_xlsx(repo/MED.format(2), MED_HEAD, [['id0', *base]])  # the same id in the second part
    res = load_rows('medmcqa/translated', repo)
    gold = {r['id']: r['gold'] for r in res.rows}
    assert gold == {'id0': 'A', 'id3': 'D', 'idna': 'A'}
    assert [(q['row'], q['field'], q['rule']) for q in res.quarantined] == [(4, 'gold', 'gold_range')]
    assert '0-3' in res.quarantined[0]['problem']
    ratings = {r['id']: r['ratings'] for r in res.rows[:3]}
    assert ratings['id0'] == {'gpt_4.1_mini': 5, 'grok_3_mini': 5} and ratings['idna'] == {'gpt_4.1_mini': None, 'grok_3_mini': 5}
    assert {(w['row'], w['rule']) for w in res.warnings} >= {(5, 'rating'), (5, 'text_as_number'), (2, 'repeated_id')}
    assert res.rows[0]['subject'] == 'anatomy' and res.rows[0]['explanation'] == 'توضیح'
    assert res.rows[0]['id'] == 'id0' and res.where[-1][1] == 2 and res.where[-1][0].endswith('part2.xlsx')


def test_pairs_repeated_ids_and_same_answers(repo):
    head = ['id', 'prompt', 'correct_choice', 'prefered_answer', 'rejected_answer']
    write_xlsx(repo/PAIRS.format(1), head, [['p1', 'پرسش', 'A', 'خوب', 'بد']])
    write_xlsx(repo/PAIRS.format(2), head, [['p2', 'پرسش ۲', 'E', 'خوب', 'بد']])
    write_xlsx(repo/PAIRS.format(22), head, [['p3', 'پرسش ۳', 'B', 'یک', 'دو'], ['p3', 'پرسش ۳', 'B', 'سه', 'دو'],
                                             ['p4', 'پرسش ۴', 'C', 'همان', 'همان']])
    res = load_rows('pairs/published', repo)
    assert [r['id'] for r in res.rows] == ['p1', 'p3', 'p3'] and [r['part'] for r in res.rows] == ['part1', 'part22', 'part22']
    assert [(q['row'], q['rule']) for q in res.quarantined] == [(2, 'gold_range'), (4, 'same_answer')]
    (rep,) = [w for w in res.warnings if w['rule'] == 'repeated_id']
    assert rep['row'] == 3 and rep['file'].endswith('part22.xlsx') and 'part22.xlsx row 2' in rep['problem']
    assert res.rows[0] == {'id': 'p1', 'prompt': 'پرسش', 'chosen': 'خوب', 'rejected': 'بد', 'gold': 'A', 'method': 'unknown', 'part': 'part1'}


def test_kqa_jsonl_with_nan(repo):
    p = repo/KQA
    p.parent.mkdir(parents=True)
    rows = [{'Question': 'چه؟', 'Free_form_answer': 'این.', 'Must_have': "['a']", 'ICD_10_diag': math.nan},
            {'Question': 'کی؟', 'Free_form_answer': math.nan, 'Must_have': "['b']"}]
    p.write_text('\n'.join(json.dumps(r, ensure_ascii=False) for r in rows) + '\n', encoding='utf-8')
    res = load_rows('kqa', repo)
    assert [r['answer'] for r in res.rows] == ['این.'] and res.rows[0]['source'] == 'kqa' and res.rows[0]['must_have'] == "['a']"
    assert [(q['row'], q['field'], q['rule']) for q in res.quarantined] == [(2, 'answer', 'nan')]


def test_unreadable_and_incomplete_files_are_clear_errors(repo):
    p = repo/MMLU
    p.parent.mkdir(parents=True)
    p.write_bytes(b'this is not a spreadsheet')
    with pytest.raises(DataError, match='mmlu-anatomy_fa.xlsx: cannot be read as a spreadsheet'): load_rows('mmlu/anatomy', repo)
    write_xlsx(p, ['question', 'option1', 'option2', 'answer'], [['q', 'a', 'b', 1]])
    with pytest.raises(DataError, match=r"mmlu-anatomy_fa.xlsx: missing column\(s\) \['option3', 'option4'\]"): load_rows('mmlu/anatomy', repo)
    with pytest.raises(DataError, match='kopp.xlsx: no such file'): load_rows('ibmsee', repo)
    bad = repo/'x.jsonl'
    bad.write_text('{"a": 1}\n[1]\n', encoding='utf-8')
    with pytest.raises(DataError, match='x.jsonl: line 2: a list, not a JSON object'): read_jsonl(bad)
    kqa = repo/DATASETS['kqa'].files[0]
    kqa.parent.mkdir(parents=True)
    kqa.write_text('{broken\n[1]\n', encoding='utf-8')
    with pytest.raises(DataError, match=r'no line of it is a JSON object \(line 1: not valid JSON'): load_rows('kqa', repo)


def test_a_broken_jsonl_line_is_one_quarantined_row(repo):
    "A stray or cut-off line loses that line, not the file: it is quarantined with file, line, field 'row', rule 'parse'."
    p = repo/DATASETS['kqa'].files[0]
    p.parent.mkdir(parents=True)
    good = [json.dumps({'Question': f'پرسش {i}؟', 'Free_form_answer': f'پاسخ {i}.'}, ensure_ascii=False) for i in range(3)]
    p.write_text(f'{good[0]}\n{{"Question": "x", \n{good[1]}\n"just text"\n{good[2]}\n{{"Question": "cut', encoding='utf-8')
    res = load_rows('kqa', repo)
    assert [r['question'] for r in res.rows] == ['پرسش 0؟', 'پرسش 1؟', 'پرسش 2؟']
    assert [(q['file'], q['row'], q['field'], q['rule']) for q in res.quarantined] == [(str(p), n, 'row', 'parse') for n in (2, 4, 6)]
    assert 'not valid JSON' in res.quarantined[0]['problem'] and 'a str, not a JSON object' in res.quarantined[1]['problem']
    assert res.quarantined[2]['data'] == {'line': '{"Question": "cut'} and res.summary()['reasons'] == {'parse': 3}


def test_unknown_rule_is_refused():
    res = validate([], 'qa', 'f.jsonl')
    with pytest.raises(ValueError, match="unknown validation rule 'typo'"): res.add('f.jsonl', 1, {}, [('question', 'typo', 'x')])


def test_wrong_folder_unknown_names_and_hub_only(tmp_path, repo):
    with pytest.raises(DataError, match="not a folder of the authors' repositories"): load_rows('ibmsee', tmp_path/'nowhere')
    with pytest.raises(KeyError, match='unknown dataset'): load_rows('mmlu/astrology', repo)
    with pytest.raises(DataError, match=r"Medical_Corpus.jsonl: no such file\. Download it with `gaokerena data fetch .* --corpus`"):
        load_rows('corpus', repo)
    with pytest.raises(DataError, match=r"train.xlsx: no such file\. A fresh clone .* `gaokerena data fetch"): load_rows('mf3qa/train', repo)
    with pytest.raises(DataError, match='not on the hub'): load_rows('pairs/published', 'hub')


def test_hub_offline_names_the_dataset_and_what_to_do():
    with pytest.raises(DataError) as e: load_rows('mf3qa/train', 'hub')
    msg = str(e.value)
    assert "'gaokerena/MF3QA' (mf3qa/train)" in msg and 'HF_HUB_OFFLINE' in msg and 'gaokerena data fetch' in msg


def test_hub_path_converts_rows_from_a_local_dataset(tmp_path):
    "The hub code path for real, on a local dataset folder standing in for the hub id."
    hub = tmp_path/'mf3qa'
    write_jsonl([{'Question': 'سؤال', 'Answer': 'پاسخ', 'Source': 'niniban.com'}, {'Question': 'تهی', 'Answer': ''}], hub/'test.jsonl')
    write_jsonl([{'Question': 'x', 'Answer': 'y', 'Source': 's'}], hub/'train.jsonl')
    ctx = run_context('tiny', tmp_path/'run')
    ctx = dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings, sources={**ctx.settings.sources, 'mf3qa': str(hub)},
                                                                profile=dataclasses.replace(ctx.settings.profile, data_source='hub')))
    res = load_rows('mf3qa/test', ctx)
    assert res.source == str(hub) and [r['answer'] for r in res.rows] == ['پاسخ'] and res.rows[0]['source'] == 'niniban.com'
    assert [(q['row'], q['field'], q['rule']) for q in res.quarantined] == [(2, 'answer', 'empty')]
    assert res.quarantined[0]['file'] == f'{hub}[test]'


def test_sample_names():
    for s in ('mmlu/anatomy', 'ibmsee'):
        res = load_rows(s)
        assert res.source == 'sample' and res.rows and {r['subject'] for r in res.rows} == {s.removeprefix('mmlu/')}
        assert not res.quarantined
    train, test = load_rows('mf3qa/train').rows, load_rows('mf3qa/test').rows
    assert len(train) + len(test) == len(load_sample('qa')) and len(test) == round(0.15 * len(load_sample('qa')))
    assert not {r['id'] for r in train} & {r['id'] for r in test}
    with pytest.raises(DataError, match='bundled sample has no'): load_rows('pairs/published')


def test_validate_schema_rows():
    row = {'id': 'q', 'subject': 's', 'question': 'q', 'options': dict(zip(LETTERS, 'abcd')), 'gold': 'A', 'explanation': '', 'source': 's'}
    res = validate([row, {**row, 'options': {'A': 'a', 'B': 'b', 'C': 'c'}}, {**row, 'gold': None}, {**row, 'question': 3}], 'mcq', 'f')
    assert [(q['row'], q['field'], q['rule']) for q in res.quarantined] == [(2, 'options', 'missing'), (3, 'gold', 'missing'), (4, 'question', 'not_text')]
    assert len(DATASETS) >= 18 and all(s.kind in ('mcq', 'qa', 'pairs', 'corpus') for s in DATASETS.values())


def test_prepare_sample_and_load_prepared(tmp_path):
    from gaokerena.sources import load_prepared, prepare_data
    from gaokerena.rows import read_jsonl
    ctx = run_context('tiny', tmp_path, overrides={'profile.data_source': 'sample'})
    assert len(load_prepared(ctx, 'mcq')) == len(load_sample('mcq'))  # before prepare_data: the sample
    with pytest.raises(DataError, match=r"source \(sample\) has no 'pairs'"): load_prepared(ctx, 'pairs')
    with pytest.raises(DataError, match="not a prepared dataset"): load_prepared(ctx, 'mmlu/anatomy')
    summary = prepare_data(ctx)
    assert set(summary) == {'corpus', 'qa_train', 'qa_test', 'mcq'} and summary['mcq']['kept'] == len(load_sample('mcq'))
    assert summary['corpus']['tokens'] is None and summary['qa_test']['read'] == round(0.15 * len(load_sample('qa')))
    assert read_jsonl(tmp_path/'data'/'qa_test.jsonl') == load_prepared(ctx, 'qa_test') == load_rows('mf3qa/test').rows


def test_prepare_the_world(tmp_path):
    "The tiny profile prepares the miniature world under the real datasets' names, MedMCQA-like set included, nothing set aside."
    from gaokerena.sources import load_prepared, prepare_data
    from gaokerena.world import build_world
    ctx = run_context('tiny', tmp_path)
    world = build_world()
    assert load_prepared(ctx, 'medmcqa') == world['medmcqa']              # before prepare_data: generated
    summary = prepare_data(ctx)
    assert set(summary) == {'corpus', 'qa_train', 'qa_test', 'mcq', 'medmcqa'}
    assert {k: summary[k]['kept'] for k in summary} == {'corpus': len(world['corpus']), 'qa_train': len(world['qa_train']),
                                                         'qa_test': len(world['qa_test']), 'mcq': len(world['mcq']), 'medmcqa': len(world['medmcqa'])}
    assert all(summary[k]['quarantined'] == 0 for k in summary) and summary['mcq']['source'] == 'world'
    assert load_prepared(ctx, 'qa_train') == world['qa_train']            # written normalised: the world already is
    with pytest.raises(DataError, match=r"source \(world\) has no 'pairs'"): load_prepared(ctx, 'pairs')


def test_fetch_repos_clones_both_and_skips_present_ones(tmp_path):
    "A real `git clone` from local repositories standing in for GitHub (file:// URLs, no network)."
    import subprocess
    from gaokerena.config import load_settings
    from gaokerena.sources import fetch_repos
    urls = {}
    for name in ('v', 'r'):
        src = tmp_path/f'src-{name}'
        write_xlsx(src/('dataset/KOPP/kopp.xlsx' if name == 'v' else 'dataset/pairs/x.xlsx'), ['a'], [['b']])
        git = lambda *a: subprocess.run(['git', '-C', str(src), *a], check=True, capture_output=True)
        git('init', '-q'); git('add', '.'); git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'data')
        urls[f'repo_{name}'] = src.as_uri()
    s = load_settings()
    s = dataclasses.replace(s, sources={**s.sources, **urls})
    dest = fetch_repos(tmp_path/'data', s)
    assert (dest/'gaokerena-v/dataset/KOPP/kopp.xlsx').is_file() and (dest/'gaokerena-r/dataset/pairs/x.xlsx').is_file()
    assert fetch_repos(dest, dataclasses.replace(s, sources={**s.sources, 'repo_v': 'file:///nowhere'})) == dest  # present: skipped
    with pytest.raises(DataError, match='could not clone file:///nowhere'):
        fetch_repos(tmp_path/'other', dataclasses.replace(s, sources={**s.sources, 'repo_v': 'file:///nowhere'}))


def test_parts_are_found_by_pattern_in_part_order(repo):
    "Every part the folder holds, part2 before part10: never a fixed list of parts."
    base = ['q', 'a', 'b', 'c', 'd', 'توضیح', 0, 'single', 'Anatomy', None, 5, 5]
    for p in (10, 1, 2):
        write_xlsx(repo/MED.format(p), MED_HEAD, [[f'id{p}', *base]])
    res = load_rows('medmcqa/translated', repo)
    assert [r['id'] for r in res.rows] == ['id1', 'id2', 'id10'] and [Path(f).name for f, _ in res.where][-1] == 'translated_qas_part10.xlsx'
    with pytest.raises(DataError, match=r'filtered_qas_part\*\.xlsx: no such file'): load_rows('medmcqa/filtered', repo)


def test_pair_ids_holding_question_text_are_joined_to_the_question(repo):
    "Pair parts 2-11 hold the question's text in `id`: the pair gets the id of the translated question with that text and options."
    opts = ('الف', 'ب', 'ج', 'د')
    write_xlsx(repo/MED.format(1), MED_HEAD, [
        ['m1', 'سرفه چیست؟', *opts, '', 0, 'single', 'x', None, 5, 5],         # "What is a cough?"
        ['m2', 'سرفه چیست؟', 'یک', 'دو', 'سه', 'چهار', '', 1, 'single', 'x', None, 5, 5],  # the same text, other options
        ['m3', 'تب چیست؟', *opts, '', 2, 'single', 'x', None, 5, 5]])          # "What is a fever?"
    prompt = lambda q, o: f'## پرسش\n{q} \n\n## گزینه ها\n' + '\n'.join(f'[{k}] : {v}' for k, v in zip(LETTERS, o)) + ' \n'
    head = ['id', 'prompt', 'correct_choice', 'prefered_answer', 'rejected_answer']
    write_xlsx(repo/PAIRS.format(1), head, [['m3', prompt('تب چیست؟', opts), 'C', 'خوب', 'بد']])
    write_xlsx(repo/PAIRS.format(2), head, [['سرفه چیست؟', prompt('سرفه چیست؟', ('یک', 'دو', 'سه', 'چهار')), 'B', 'خوب', 'بد'],
                                            ['سرفه چیست؟', prompt('سرفه چیست؟', opts), 'A', 'خوب', 'بد'],
                                            ['سردرد چیست؟', prompt('سردرد چیست؟', opts), 'A', 'خوب', 'بد']])  # "What is a headache?"
    res = load_rows('pairs/published', repo)
    assert [r['id'] for r in res.rows] == ['m3', 'm2', 'm1', 'سردرد چیست؟']
    notes = [(w['row'], w['rule'], w['problem']) for w in res.warnings if w['rule'] == 'question_as_id']
    assert notes == [(2, 'question_as_id', 'the id column holds the question text: joined to m2'),
                     (3, 'question_as_id', 'the id column holds the question text: joined to m1'),
                     (4, 'question_as_id', 'the id column holds question text, but no question has that text: kept as the id')]
    assert not [w for w in res.warnings if w['rule'] == 'repeated_id']


def test_gold_numbered_by_the_other_convention_is_refused(repo):
    write_xlsx(repo/MMLU, MMLU_HEAD, [mcq(f'س {i}', gold=i % 4) for i in range(8)])  # 0-3 where the benchmark numbers 1-4
    with pytest.raises(DataError, match=r"mmlu-anatomy_fa.xlsx: column 'answer' holds \[0, 1, 2, 3\]: answers numbered from 0"):
        load_rows('mmlu/anatomy', repo)


def stand_in_repo(repo):
    "A data folder with MF3QA's dev and test sets, and neither the corpus nor train.xlsx (like a copy without large files)."
    for split in ('dev', 'test'):
        write_xlsx(repo/f'gaokerena-v/dataset/MF3QA/{split}.xlsx', ['Question', 'Answer', 'Source'], [[f'{split}؟', 'پاسخ', 'niniban.com']])
    return repo


def test_a_real_profile_stops_where_data_dir_lacks_a_dataset(repo, tmp_path):
    from gaokerena.sources import prepare_data, prepared_dataset
    ctx = run_context('h100', tmp_path/'run', stand_in_repo(repo))
    with pytest.raises(DataError) as e: prepared_dataset(ctx, 'qa_train')
    msg = str(e.value)
    assert "MF3QA/train.xlsx: missing, and profile 'h100' uses no stand-ins" in msg and '`gaokerena data fetch' in msg
    assert 'Or set profile.allow_stand_ins = true to use mf3qa/dev instead' in msg
    with pytest.raises(DataError, match=r"Medical_Corpus.jsonl: missing.*--corpus.*allow_stand_ins = true to use the bundled sample"):
        prepare_data(ctx)
    assert not (tmp_path/'run'/'data'/'corpus.jsonl').exists(), 'a real run never trains on the bundled sample by accident'


def test_stand_ins_only_when_allowed_and_named_as_such(repo, tmp_path):
    from gaokerena.sources import prepared_dataset
    ctx = run_context('h100', tmp_path/'run', stand_in_repo(repo), {'profile.allow_stand_ins': 'true'})
    qa = prepared_dataset(ctx, 'qa_train')
    assert [r['question'] for r in qa.rows] == ['dev؟'] and qa.source.endswith('(standing in for mf3qa/train, which data_dir lacks)')
    corpus = prepared_dataset(ctx, 'corpus')
    assert len(corpus.rows) == len(load_sample('corpus')) and 'standing in for corpus' in corpus.source
    assert run_context('tiny', tmp_path/'run').settings.profile.allow_stand_ins
    assert not run_context('colab-l4', tmp_path/'run').settings.profile.allow_stand_ins


def test_mf3qa_train_xlsx_is_what_phase_1_trains_on(repo, tmp_path):
    "With train.xlsx in data_dir (Question, Answer, Source) it is the instruction-tuning set, normalised, whatever the profile."
    from gaokerena.sources import prepared_dataset
    write_xlsx(stand_in_repo(repo)/DATASETS['mf3qa/train'].files[0], ['Question', 'Answer', 'Source'],
               [['سر درد دارم، چکار کنم؟', 'مي توانيد استراحت کنید.', 'drhast.com'],   # "I have a headache, what do I do?" "You can rest."
                ['گلو درد؟', 'غرغره کنید.', 'niniban.com']])                          # "Sore throat?" "Gargle."
    for profile in ('h100', 'tiny'):
        qa = prepared_dataset(run_context(profile, tmp_path/'run', repo), 'qa_train')
        assert qa.source == str(repo) and [r['source'] for r in qa.rows] == ['drhast.com', 'niniban.com']
        assert qa.rows[0]['answer'] == 'می‌توانید استراحت کنید.'  # Arabic yeh and a space before the verb prefix, normalised


def test_kqa_is_judged_once(repo, tmp_path):
    "MF3QA's released test set already holds K-QA's questions: the free-form sets split it, and never add K-QA's own file beside it."
    from gaokerena.sources import load_freeform
    write_xlsx(repo/'gaokerena-v/dataset/MF3QA/test.xlsx', ['Question', 'Answer', 'Source'],
               [['تب دارم؟', 'استراحت کنید.', 'doctor-yab.ir'], ['سرفه دارم؟', 'آب بنوشید.', 'kqa'], ['کمردرد؟', 'ورزش کنید.', 'isovisit.com']])
    # "I have a fever?" "Rest." / "I cough?" "Drink water." / "Back pain?" "Exercise."
    kqa = repo/DATASETS['kqa'].files[0]
    kqa.parent.mkdir(parents=True)
    kqa.write_text(json.dumps({'Question': 'سرفه دارم؟', 'Free_form_answer': 'آب بنوشید.'}, ensure_ascii=False) + '\n', encoding='utf-8')
    sets = load_freeform(run_context('tiny', tmp_path/'run', repo))
    assert {n: [r['question'] for r in rows] for n, rows in sets.items()} == {'mf3qa': ['تب دارم؟', 'کمردرد؟'], 'kqa': ['سرفه دارم؟']}
    for source in ('world', 'sample'):   # the kit's own sources hold only their held-out QA
        own = load_freeform(run_context('tiny', tmp_path/source, overrides={'profile.data_source': source}))
        assert list(own) == ['mf3qa'] and len(own['mf3qa']) == len(load_rows('mf3qa/test', source).rows) > 0
