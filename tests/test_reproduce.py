"Re-scoring the authors' published sheets: readers on synthetic sheets, and the papers' numbers on the real files."
from collections import Counter
import pandas as pd
import pytest
from gaokerena.data import DataError
from gaokerena.reproduce import normalise_label, published_sheets, read_output_sheet

COLUMNS = ['Question', 'question_choices', 'correct_answer', 'model_prompt', 'AI_answer', 'AI_chosen_answer']
OPTS = "{'A': 'x', 'B': 'y', 'C': 'z', 'D': 'w'}"


def sheet(tmp_path, rows, name='s.xlsx'):
    "A synthetic output sheet with the published columns."
    p = tmp_path/name
    pd.DataFrame(rows, columns=COLUMNS).to_excel(p, index=False)
    return p


def test_labels_normalise_every_spelling_the_authors_used():
    assert [normalise_label(x) for x in ['A', 'd', 'invalid', 'none', 'multiple_choice', 'multiple-choice',
                                         'Multiple-choice', None, float('nan'), ' ']] == \
        ['A', 'D', 'invalid', 'none', 'multiple', 'multiple', 'multiple', 'invalid', 'invalid', 'invalid']
    assert normalise_label('not_agreed') is None and normalise_label('AB') is None


def test_read_output_sheet_keeps_empty_generations_and_raw_labels(tmp_path):
    df = read_output_sheet(sheet(tmp_path, [['q1', OPTS, 'a', 'p', None, 'Multiple-choice'], ['q2', OPTS, 'C', 'p', 'g', 'C']]))
    assert df.generation.tolist() == ['', 'g'] and df.gold.tolist() == ['A', 'C']
    assert df.label.tolist() == ['multiple', 'C'] and df.label_raw.tolist() == ['Multiple-choice', 'C']
    assert df.options[1] == {'A': 'x', 'B': 'y', 'C': 'z', 'D': 'w'}


@pytest.mark.parametrize('bad, field', [
    (['q', "{'A': 'x', 'B': 'y'}", 'A', 'p', 'g', 'A'], 'question_choices'),
    (['q', "not a dict", 'A', 'p', 'g', 'A'], 'question_choices'),
    (['q', OPTS, None, 'p', 'g', 'A'], 'correct_answer'),
    (['q', OPTS, 'A', 'p', 'g', 'perhaps'], 'AI_chosen_answer')])
def test_read_output_sheet_errors_name_file_row_and_field(tmp_path, bad, field):
    p = sheet(tmp_path, [['q0', OPTS, 'B', 'p', 'g', 'B'], bad], 'broken.xlsx')
    with pytest.raises(DataError, match=rf'broken\.xlsx: row 3: field {field}'): read_output_sheet(p)


@pytest.fixture(scope='session')
def sheets(real_data):
    return published_sheets(real_data)


def test_every_published_sheet_is_found(sheets):
    count = Counter(zip(sheets['paper'], sheets['style']))
    assert count == {('v', 'straight'): 24, ('r', 'straight'): 4, ('r', 'cot'): 60, ('r', 'votes'): 12, ('r', 'verifier'): 4}
    assert set(sheets['benchmark']) == {'ibmsee', 'anatomy', 'clinical_knowledge', 'college_biology'}
    assert set(sheets[sheets['paper'] == 'v'].model) == {'gaokerena-v', 'aya-expanse-8b', 'qwen2.5-7b', 'persianmind',
                                                         'medmobile-gemma2b', 'medmobile-parsinlu'}
    assert sorted(sheets[sheets['style'] == 'cot'].run.unique()) == [1, 2, 3, 4, 5]


def test_every_published_output_sheet_reads_cleanly(sheets):
    labels = Counter()
    for p in sheets[sheets['style'].isin(['straight', 'cot'])].path:
        df = read_output_sheet(p)
        assert len(df) > 0 and df.options.map(len).eq(4).all(), p
        labels.update(df.label)
    assert set(labels) == {'A', 'B', 'C', 'D', 'none', 'multiple', 'invalid'}
    assert sum(labels.values()) == 15656


def test_gaokerena_v_straight_ibmsee_labels_give_the_paper(sheets):
    row = sheets[(sheets['model'] == 'gaokerena-v') & (sheets['style'] == 'straight') & (sheets['benchmark'] == 'ibmsee')
                 & (sheets['paper'] == 'v')]
    df = read_output_sheet(row.path.item())
    assert (len(df), int((df.label == df.gold).sum())) == (168, 65)
