"The hub loaders on local datasets laid out the ways a hub repository may be, read through datasets.load_dataset (no network)."
import dataclasses, json
from pathlib import Path
import pytest
from datasets import Dataset
from test_data import write_xlsx
from gaokerena.config import run_context
from gaokerena.rows import LETTERS, DataError
from gaokerena.sources import PAPER_ROWS, SUBJECTS, load_rows

SIZES = {s: PAPER_ROWS[f'mmlu/{s}'] for s in SUBJECTS}
COLUMNS = ['question', 'option1', 'option2', 'option3', 'option4', 'answer']


@pytest.fixture(autouse=True)
def own_datasets_cache(tmp_path, monkeypatch):
    "A datasets cache per test: datasets caches a local folder by its name, so two tests' `repo` folders would share rows."
    import datasets
    monkeypatch.setattr(datasets.config, 'HF_DATASETS_CACHE', tmp_path/'hf-datasets')


def mmlu_rows(subject: str, n: int, base: int = 1) -> list[dict]:
    "`n` questions of `subject`, the gold answer cycling through the four options, numbered from `base`."
    # پرسش = "question", گزینه = "option"
    return [{'question': f'{subject} پرسش {i}', **{f'option{k}': f'{subject} {i} گزینه {k}' for k in range(1, 5)},
             'answer': base + i % 4} for i in range(n)]


def card(folder: Path, configs: dict[str, dict[str, str]], features: list[str] | None = None) -> None:
    "A README.md whose YAML declares `configs` {config: {split: data file pattern}} (and the columns, when given)."
    folder.mkdir(parents=True, exist_ok=True)
    lines = ['---']
    if features: lines += ['dataset_info:', '  features:'] + [f'  - name: {f}\n    dtype: string' for f in features]
    lines.append('configs:')
    for config, splits in configs.items():
        lines += [f'- config_name: {config}', '  data_files:'] + [f'  - split: {s}\n    path: {p}' for s, p in splits.items()]
    (folder/'README.md').write_text('\n'.join(lines + ['---', '']), encoding='utf-8')


def parquet(folder: Path, name: str, rows: list[dict]) -> str:
    "Write `rows` as `folder`/data/`name`.parquet; the path inside the repository."
    (folder/'data').mkdir(parents=True, exist_ok=True)
    Dataset.from_list(rows).to_parquet(folder/'data'/f'{name}.parquet')
    return f'data/{name}.parquet'


def split_per_subject(folder: Path, sizes=SIZES) -> Path:
    card(folder, {'default': {s: parquet(folder, s, mmlu_rows(s, n)) for s, n in sizes.items()}})
    return folder


def config_per_subject(folder: Path, sizes=SIZES) -> Path:
    card(folder, {s: {'test': parquet(folder, f'{s}-test', mmlu_rows(s, n)), 'dev': parquet(folder, f'{s}-dev', mmlu_rows(s, 5))}
                  for s, n in sizes.items()})
    return folder


def subject_column(folder: Path, sizes=SIZES) -> Path:
    "One train split, each row naming its subject as the hub does ('Clinical Knowledge')."
    rows = [{**r, 'subject': s.replace('_', ' ').title()} for s, n in sizes.items() for r in mmlu_rows(s, n)]
    parquet(folder, 'train-00000-of-00001', rows)
    return folder


def xlsx_only(folder: Path, sizes=SIZES) -> Path:
    "The authors' sheets as they are in their GitHub repository: datasets 4 has no reader for them."
    for s, n in sizes.items():
        write_xlsx(folder/'MMLU_fa'/f'mmlu-{s}_fa.xlsx', COLUMNS, [[r[c] for c in COLUMNS] for r in mmlu_rows(s, n)])
    return folder


def hub_ctx(tmp_path, **overrides):
    "The run context of a GPU profile (data from the hub) whose [sources] and [hub] settings are `overrides`."
    return run_context('colab-l4', tmp_path/'run', overrides=overrides)


@pytest.mark.parametrize('layout', [split_per_subject, config_per_subject, subject_column, xlsx_only])
def test_every_mmlu_layout_loads_the_papers_subjects(tmp_path, layout):
    ctx = hub_ctx(tmp_path, **{'sources.mmlu_fa': str(layout(tmp_path/'repo'))})
    for s in SUBJECTS:
        res = load_rows(f'mmlu/{s}', ctx)
        assert res.read == len(res.rows) == SIZES[s] and not res.quarantined, (layout.__name__, s)
        assert {r['subject'] for r in res.rows} == {s} and all(r['question'].startswith(s) for r in res.rows)
        assert [r['gold'] for r in res.rows[:5]] == ['A', 'B', 'C', 'D', 'A']
        assert res.rows[1]['options'] == {k: f'{s} 1 گزینه {i}' for i, k in enumerate(LETTERS, 1)}


def test_a_subject_count_unlike_the_papers_is_an_error(tmp_path):
    ctx = hub_ctx(tmp_path, **{'sources.mmlu_fa': str(split_per_subject(tmp_path/'repo', {**SIZES, 'anatomy': 134}))})
    with pytest.raises(DataError, match=r"\[anatomy\]: 134 rows, but mmlu/anatomy has 135 in the papers.*\[hub\] mmlu"):
        load_rows('mmlu/anatomy', ctx)
    assert len(load_rows('mmlu/college_biology', ctx).rows) == 144


def test_a_subject_the_hub_does_not_have_is_named(tmp_path):
    repo = config_per_subject(tmp_path/'repo', {s: n for s, n in SIZES.items() if s != 'anatomy'})
    with pytest.raises(DataError) as e: load_rows('mmlu/anatomy', hub_ctx(tmp_path, **{'sources.mmlu_fa': str(repo)}))
    assert "which config? found configs ['medical_genetics'," in str(e.value) and 'Set [hub] mmlu' in str(e.value)
    with pytest.raises(DataError, match=r"no config 'anatomia'; found configs \['medical_genetics'"):
        load_rows('mmlu/anatomy', hub_ctx(tmp_path, **{'sources.mmlu_fa': str(repo), 'hub.mmlu': 'anatomia:test'}))


def test_one_split_without_a_subject_column_says_what_it_found(tmp_path):
    repo = tmp_path/'repo'
    parquet(repo, 'train-00000-of-00001', mmlu_rows('anatomy', 135))
    with pytest.raises(DataError) as e: load_rows('mmlu/anatomy', hub_ctx(tmp_path, **{'sources.mmlu_fa': str(repo)}))
    msg = str(e.value)
    assert "no config or split is named after 'anatomy'" in msg and "no column 'subject'" in msg and 'subject_column' in msg
    assert "columns ['question', 'option1', 'option2', 'option3', 'option4', 'answer']" in msg


def test_ibmsee_is_kopps_test_split_never_a_merged_train(tmp_path):
    # سؤال = "question", گزینه = "option", آناتومی = "anatomy", پزشکی شهریور 402 = "medicine, Shahrivar 1402" (Sept 2023)
    kopp = lambda n, src: [{'Question': f'سؤال {i}', **{f'Option{k}': f'گزینه {k}' for k in range(1, 5)}, 'Correct answer': 1 + i % 4,
                            'Topic': 'آناتومی', 'Source': src} for i in range(n)]
    repo = tmp_path/'kopp'
    card(repo, {'default': {'test': parquet(repo, 'test', kopp(168, 'پزشکی شهریور 402')), 'dev': parquet(repo, 'dev', kopp(1710, 'other'))}})
    res = load_rows('ibmsee', hub_ctx(tmp_path, **{'sources.ibmsee': str(repo)}))
    assert len(res.rows) == 168 and {r['source'] for r in res.rows} == {'پزشکی شهریور 402'} and res.rows[3]['gold'] == 'D'
    merged = tmp_path/'merged'
    parquet(merged, 'train-00000-of-00001', kopp(1878, 'x'))
    with pytest.raises(DataError, match=r"no split 'test'; found splits \['train'\]\. Set \[hub\] ibmsee"):
        load_rows('ibmsee', hub_ctx(tmp_path, **{'sources.ibmsee': str(merged)}))
    with pytest.raises(DataError, match='1878 rows, but ibmsee has 168 in the papers'):
        load_rows('ibmsee', hub_ctx(tmp_path, **{'sources.ibmsee': str(merged), 'hub.ibmsee': 'auto:train'}))


def test_the_authors_corpus_columns_content_and_source_are_mapped(tmp_path):
    "The corpus has `content`, not `text`: a GPU profile must not stop on a column it can map."
    repo = tmp_path/'corpus'
    parquet(repo, 'train-00000-of-00001', [{'content': 'سرماخوردگی ویروسی است.', 'source': 'salamat.ir'},  # "A cold is viral."
                                           {'content': '', 'source': 'x'}])
    res = load_rows('corpus', hub_ctx(tmp_path, **{'sources.corpus': str(repo)}))
    assert [(r['text'], r['source']) for r in res.rows] == [('سرماخوردگی ویروسی است.', 'salamat.ir')]
    assert [(q['row'], q['field'], q['rule']) for q in res.quarantined] == [(2, 'text', 'empty')]


def test_unknown_columns_stop_with_what_was_found_and_a_column_map_fixes_them(tmp_path):
    theirs = ['soal', 'g1', 'g2', 'g3', 'g4', 'javab']  # transliterated Persian (soal: question, javab: answer): names the loader cannot know
    repo = tmp_path/'repo'
    card(repo, {'default': {s: parquet(repo, s, [dict(zip(theirs, r.values())) for r in mmlu_rows(s, n)]) for s, n in SIZES.items()}})
    with pytest.raises(DataError) as e: load_rows('mmlu/anatomy', hub_ctx(tmp_path, **{'sources.mmlu_fa': str(repo)}))
    msg = str(e.value)
    assert "missing column(s) ['question', 'option1', 'option2', 'option3', 'option4', 'gold']" in msg
    assert "found ['g1', 'g2', 'g3', 'g4', 'javab', 'soal']" in msg and '[hub_columns] mmlu_fa = their_column=our_field' in msg
    mapped = {'sources.mmlu_fa': str(repo), 'hub_columns.mmlu_fa': 'soal=question, g1=option1, g2=option2, g3=option3, g4=option4, javab=gold'}
    res = load_rows('mmlu/anatomy', hub_ctx(tmp_path, **mapped))
    assert len(res.rows) == 135 and res.rows[1]['gold'] == 'B' and res.rows[0]['question'] == 'anatomy پرسش 0'
    with pytest.raises(DataError, match=r"unknown field\(s\) \['answer'\]"):
        load_rows('mmlu/anatomy', hub_ctx(tmp_path, **{**mapped, 'hub_columns.mmlu_fa': 'javab=answer'}))


def test_the_card_is_checked_before_anything_is_loaded(tmp_path):
    "A card that declares its columns is read first: wrong columns stop the load before a data file is opened."
    repo = tmp_path/'repo'
    card(repo, {'default': {'test': 'data/test.parquet'}}, features=['Question', 'Reply'])
    (repo/'data').mkdir()
    (repo/'data'/'test.parquet').write_bytes(b'not parquet: never read')
    with pytest.raises(DataError, match=r"its card lists columns \['Question', 'Reply'\], without \['answer'\]\. Map them with \[hub_columns\] mf3qa"):
        load_rows('mf3qa/test', hub_ctx(tmp_path, **{'sources.mf3qa': str(repo)}))


def test_answers_numbered_from_zero_are_refused(tmp_path):
    repo = tmp_path/'repo'
    card(repo, {'default': {s: parquet(repo, s, mmlu_rows(s, n, base=0)) for s, n in SIZES.items()}})
    with pytest.raises(DataError, match=r"column 'answer' holds \[0, 1, 2, 3\]: answers numbered from 0, but mmlu/anatomy numbers them from 1"):
        load_rows('mmlu/anatomy', hub_ctx(tmp_path, **{'sources.mmlu_fa': str(repo)}))


def test_an_xlsx_repository_without_the_authors_file_names_lists_its_sheets(tmp_path):
    repo = tmp_path/'repo'
    write_xlsx(repo/'anat.xlsx', COLUMNS, [[r[c] for c in COLUMNS] for r in mmlu_rows('anatomy', 135)])
    with pytest.raises(DataError, match=r"files are named 'mmlu-anatomy_fa.xlsx'.*\['anat.xlsx'\]\. Set \[hub\] mmlu"):
        load_rows('mmlu/anatomy', hub_ctx(tmp_path, **{'sources.mmlu_fa': str(repo)}))
    res = load_rows('mmlu/anatomy', hub_ctx(tmp_path, **{'sources.mmlu_fa': str(repo), 'hub.mmlu': 'anat.xlsx'}))
    assert len(res.rows) == 135 and res.source == str(repo) and res.where[0] == (f'{repo}/anat.xlsx', 2)


def test_mf3qa_splits_follow_the_settings(tmp_path):
    repo = tmp_path/'mf3qa'
    qa = lambda split, n: [{'Question': f'{split} {i}؟', 'Answer': 'پاسخ', 'Source': 'niniban.com'} for i in range(n)]
    card(repo, {'default': {s: parquet(repo, s, qa(s, n)) for s, n in (('train', 5), ('validation', 3), ('test', 2))}})
    ctx = hub_ctx(tmp_path, **{'sources.mf3qa': str(repo)})
    assert [len(load_rows(n, ctx).rows) for n in ('mf3qa/train', 'mf3qa/dev', 'mf3qa/test')] == [5, 3, 2]
    assert load_rows('mf3qa/dev', ctx).rows[0]['question'] == 'validation 0؟'
    json.dumps(dataclasses.asdict(ctx.settings.profile))  # the profile stays serialisable for the ledger
