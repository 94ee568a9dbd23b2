"Checks against the authors' published files (skipped with a reason when ../shared/data is absent)."
import ast
import pytest
from gaokerena.evaluate import render_prompt

SHEETS = {
    'straight': 'gaokerena-v/evaluation/multiple_choice_qa/{bench}/gaokerena/fa_gao_result.xlsx',
    'cot': 'gaokerena-r/evaluations/zeroshot-COT/{bench}/gaokerena-r1.0/gao_experiment_no1.xlsx',
}


@pytest.mark.parametrize('style', ['straight', 'cot'])
@pytest.mark.parametrize('bench', ['kopp', 'MMLU_Anatomy'])
def test_prompts_are_the_papers_verbatim(real_data, style, bench):
    pd = pytest.importorskip('pandas')
    df = pd.read_excel(real_data/SHEETS[style].format(bench=bench))
    same = 0
    for _, r in df.iterrows():
        row = {'question': r['Question'], 'options': ast.literal_eval(r['question_choices'])}
        same += render_prompt(row, style) == r['model_prompt']
    assert same == len(df), f'{same}/{len(df)} prompts rendered verbatim'
