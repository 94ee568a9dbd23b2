"Checks against the authors' published files (skipped with a reason when ../shared/data is absent)."
import pytest
from gaokerena.evaluate import render_prompt
from gaokerena.reproduce import read_output_sheet

SHEETS = {
    'straight': 'gaokerena-v/evaluation/multiple_choice_qa/{bench}/gaokerena/fa_gao_result.xlsx',
    'cot': 'gaokerena-r/evaluations/zeroshot-COT/{bench}/gaokerena-r1.0/gao_experiment_no1.xlsx',
}


@pytest.mark.parametrize('style', ['straight', 'cot'])
@pytest.mark.parametrize('bench', ['kopp', 'MMLU_Anatomy'])
def test_prompts_are_the_papers_verbatim(real_data, style, bench):
    df = read_output_sheet(real_data/SHEETS[style].format(bench=bench))
    same = sum(render_prompt(r, style) == r['model_prompt'] for r in df.to_dict('records'))
    assert same == len(df) > 100, f'{same}/{len(df)} prompts rendered verbatim'
