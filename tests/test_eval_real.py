"Chapter 02 against the authors' published files (skipped with a reason when the authors' data is absent)."
import re
import pytest
from gaokerena.evaluate import render_verifier_prompt
from gaokerena.results import PUBLISHED
from gaokerena.sheets import read_output_sheet, read_sheet

R_BENCHES = ['kopp', 'MMLU_Anatomy', 'MMLU-clinical_knowledge', 'MMLU-college_biology']
BENCH_IDS = {'kopp': 'ibmsee', 'MMLU_Anatomy': 'anatomy', 'MMLU-clinical_knowledge': 'clinical_knowledge',
             'MMLU-college_biology': 'college_biology'}
V_SYSTEMS = {'gaokerena': 'gaokerena-v', 'aya_expanse': 'aya-expanse-8b', 'qwen2.5': 'qwen2.5-7b', 'persianmind': 'persianmind',
             'medmobile_gemma2b(translator)': 'medmobile-gemma2b', 'medmobile_parsinlu(translator)': 'medmobile-parsinlu'}


@pytest.mark.parametrize('bench', R_BENCHES)
def test_verifier_prompt_is_the_papers_verbatim(real_data, bench):
    "Every verifier prompt in sys_result.xlsx is the five CoT generations of Gaokerena-R, in run order, rendered by us."
    root = real_data/'gaokerena-r'/'evaluations'
    sys = read_sheet(root/'final-evaluation'/bench/'sys_result.xlsx')
    runs = [read_output_sheet(root/'zeroshot-COT'/bench/'gaokerena-r1.0'/f'gao_experiment_no{k}.xlsx') for k in range(1, 6)]
    asked = sys[sys.model_prompt.notna()]
    assert len(asked) >= 19
    same = 0
    for _, r in asked.iterrows():
        passages = [run.loc[run.question == r.Question, 'generation'] for run in runs]
        assert all(len(p) == 1 for p in passages), f'{bench}: question not found once in every run: {r.Question[:60]}'
        same += render_verifier_prompt([p.iloc[0] for p in passages]) == r.model_prompt
    assert same == len(asked), f'{bench}: {same}/{len(asked)} verifier prompts rendered verbatim'


STRAIGHT_LINE, COT_LINE = r'the Accuracy on [^:\n]*:\s*([0-9.]+)', r'^Accuracy:\s*([0-9.]+)'

def readme_accuracy(path, line: str = STRAIGHT_LINE) -> float:
    "The accuracy (in percent) an authors' Readme.md states on the line matching `line`."
    m = re.search(line, path.read_text(encoding='utf-8'), re.M)
    assert m, f'{path}: no line matching {line}'
    return 100 * float(m.group(1))


def agrees(published: float, stated: float) -> bool:
    "True when `published` is `stated` rounded or truncated to two decimals (the papers do both)."
    return published in (round(stated, 2), int(stated * 100) / 100)


def test_published_v_table_matches_the_authors_readmes(real_data):
    root, checked = real_data/'gaokerena-v'/'evaluation'/'multiple_choice_qa', 0
    for bench, bench_id in BENCH_IDS.items():
        for folder, model in V_SYSTEMS.items():
            stated = readme_accuracy(root/bench/folder/'Readme.md')
            assert agrees(PUBLISHED[('v_straight', model, bench_id)], stated), (model, bench_id, stated)
            checked += 1
    assert checked == 24


@pytest.mark.parametrize('table, path, model', [
    ('r_straight', 'zeroshot/kopp/gaokerena-r1.0', 'gaokerena-r'),
    ('r_cot', 'zeroshot-COT/kopp/gaokerena-r1.0', 'gaokerena-r'),
    ('r_cot', 'zeroshot-COT/kopp/gaokerena-v1', 'gaokerena-v'),
    ('r_cot', 'zeroshot-COT/kopp/aya-expanse', 'aya-expanse-8b'),
    ('r_verifier', 'final-evaluation/kopp', 'gaokerena-r'),
])
def test_published_r_ibmsee_matches_the_authors_readmes(real_data, table, path, model):
    readme = real_data/'gaokerena-r'/'evaluations'/path/'Readme.md'
    stated = readme_accuracy(readme, COT_LINE if 'COT' in path else STRAIGHT_LINE)
    assert agrees(PUBLISHED[(table, model, 'ibmsee')], stated), stated


def test_majority_letter_baseline_of_the_authors_mmlu(real_data):
    "The chapter's floor: 352 of the 1089 Persian MMLU gold letters are D (122 of 272 in professional medicine), 32.3% and 44.9%."
    from gaokerena.sources import SUBJECTS, load_rows
    from gaokerena.evaluate import majority_letter_baseline
    rows = {s: load_rows(f'mmlu/{s}', real_data).rows for s in SUBJECTS}
    pooled = majority_letter_baseline([r for s in SUBJECTS for r in rows[s]])
    prof = majority_letter_baseline(rows['professional_medicine'])
    assert (pooled['questions'], pooled['letter'], round(pooled['gold share %'] * pooled['questions'] / 100)) == (1089, 'D', 352)
    assert (prof['questions'], prof['letter'], round(prof['gold share %'], 1)) == (272, 'D', 44.9)
    assert round(pooled['gold share %'], 1) == 32.3 and pooled['uniform guess %'] == 25.0


def test_paired_test_of_gaokerena_v_and_aya_on_ibmsee(real_data):
    "The chapter's example: on the authors' hand-labelled IBMSEE answers the two models disagree on 27 of 168 questions (17 vs 10)."
    from gaokerena.evaluate import paired_comparison
    from gaokerena.sheets import published_sheets, read_output_sheet
    sheets = published_sheets(real_data)
    rows = {}
    for _, s in sheets[(sheets['style'] == 'straight') & (sheets.paper == 'v') & (sheets.benchmark == 'ibmsee')].iterrows():
        if s.model in ('gaokerena-v', 'aya-expanse-8b'):
            rows[s.model] = [{'benchmark': 'ibmsee', 'qid': r.question + str(r.options), 'gold': r.gold, 'answer': r.label}
                             for r in read_output_sheet(s.path).itertuples()]
    pc = paired_comparison(rows['gaokerena-v'], rows['aya-expanse-8b'])
    assert (pc['questions'], pc['only_a'], pc['only_b']) == (168, 17, 10)
    assert round(pc['accuracy_a'], 2) == 38.69 and round(pc['accuracy_b'], 2) == 34.52     # the published cells
    assert 0.24 < pc['p_mcnemar'] < 0.26 and pc['ci_low'] < 0 < pc['ci_high']
