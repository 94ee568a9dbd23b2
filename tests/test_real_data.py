"Checks against the authors' published files (skipped with a reason when the authors' data is absent)."
import pytest
from conftest import data_dir_or_none
from gaokerena.evaluate import render_prompt
from gaokerena.sheets import published_sheets, read_output_sheet


def prompt_sheets(data_dir) -> list:
    "(paper, style, model, benchmark, path) of every straight-prompt sheet but MedMobile's (its own prompt) and every first CoT run."
    df = published_sheets(data_dir)
    keep = ((df['style'] == 'straight') & ~df.model.str.startswith('medmobile')) | ((df['style'] == 'cot') & (df.run == 1))
    return [(s.paper, s['style'], s.model, s.benchmark, s.path) for _, s in df[keep].iterrows()]


def sheet_params() -> list:
    "One test case per sheet; one case that skips (through the real_data fixture) without the data."
    d = data_dir_or_none()
    if d is None: return [pytest.param(None, id='no-data')]
    return [pytest.param(s, id='-'.join(s[:4])) for s in prompt_sheets(d)]


def test_every_paper_model_sheet_is_checked(real_data):
    "Both papers' straight prompts for gaokerena-V, aya, Qwen, PersianMind and Gaokerena-R, and the CoT prompt of all three CoT models."
    sheets = prompt_sheets(real_data)
    assert len(sheets) == 32
    assert sorted({(p, st, m) for p, st, m, _, _ in sheets}) == [
        ('r', 'cot', 'aya-expanse-8b'), ('r', 'cot', 'gaokerena-r'), ('r', 'cot', 'gaokerena-v'), ('r', 'straight', 'gaokerena-r'),
        ('v', 'straight', 'aya-expanse-8b'), ('v', 'straight', 'gaokerena-v'), ('v', 'straight', 'persianmind'),
        ('v', 'straight', 'qwen2.5-7b')]
    assert {b for *_, b, _ in sheets} == {'anatomy', 'clinical_knowledge', 'college_biology', 'ibmsee'}


@pytest.mark.parametrize('sheet', sheet_params())
def test_prompts_are_the_papers_verbatim(real_data, sheet):
    _, style, _, _, path = sheet
    df = read_output_sheet(path)
    same = sum(render_prompt(r, style) == r['model_prompt'] for r in df.to_dict('records'))
    assert same == len(df) > 100, f'{path}: {same}/{len(df)} prompts rendered verbatim'
