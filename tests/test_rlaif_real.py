"The authors' published pairs and translated MedMCQA through 03_rlaif (skipped without the authors' data)."
import json, subprocess, sys
from collections import Counter
from conftest import ROOT
from gaokerena.config import run_context
from gaokerena.rows import LETTERS
from gaokerena.evaluate import COT_PROMPT, render_prompt
from gaokerena.extract import extract_choice
from gaokerena.rlaif import TEACHER_REWRITE, teacher_messages
from gaokerena.rounds import published_pairs, rlaif_questions


def test_published_pairs_counts_and_repeated_ids(real_data, tmp_path):
    rows, report = published_pairs(run_context('tiny', tmp_path, real_data))
    assert report['pairs'] == len(rows) == 11163 and report['quarantined'] == 2
    assert len(report['per_part']) == 22 and report['per_part']['part22'] == 754 and sum(report['per_part'].values()) == 11163
    per_id = Counter(r['id'] for r in rows)
    assert report['duplicated_ids'] == sum(n > 1 for n in per_id.values()) == 203
    assert report['rows_with_a_duplicated_id'] == 406
    repeated = Counter(r['part'] for r in rows if per_id[r['id']] > 1)
    assert repeated['part22'] == 386 and sum(repeated.values()) == 406
    by_id = {}
    for r in rows:
        if per_id[r['id']] > 1: by_id.setdefault(r['id'], []).append(r)
    assert all(a['prompt'] == b['prompt'] and a['chosen'] != b['chosen'] for a, b in by_id.values()), 'two pairs, one question'
    assert {r['gold'] for r in rows} == set(LETTERS)
    ex = report['extractor']
    assert sum(ex['chosen'].values()) == sum(ex['rejected'].values()) == 11163
    assert ex['chosen']['gold'] > 11163 / 2 > ex['rejected'].get('gold', 0)
    # read with the question and options of each prompt: 10,442 chosen texts reach gold; from the text alone, 9,174
    alone = sum(extract_choice(r['chosen']) == r['gold'] for r in rows)
    assert ex['chosen']['gold'] > 0.9 * 11163 and ex['chosen']['gold'] - alone > 1000
    head = COT_PROMPT.strip().split('\n')[0]
    assert all(r['prompt'].strip().startswith(head) for r in rows)


def test_medmcqa_questions_reach_the_teacher_with_their_explanation(real_data, tmp_path):
    ctx = run_context('tiny', tmp_path, real_data, overrides={'profile.rlaif_limit': 8})
    qs = rlaif_questions(ctx)
    assert len(qs) == ctx.settings.profile.rlaif_limit == 8
    full = rlaif_questions(run_context('tiny', tmp_path, real_data, overrides={'profile.rlaif_limit': 0}))
    assert len(full) > 1500 and Counter(q['gold'] for q in full).keys() == set(LETTERS)
    q = qs[0]
    told = teacher_messages(TEACHER_REWRITE, q, 'پاسخ صحیح: [A]', 'A')[0]['content']
    assert q['explanation'] in told and f"گزینهٔ [{q['gold']}]" in told
    assert all(f'[{k}] : {q["options"][k]}' in render_prompt(q, 'cot') for k in LETTERS)


def test_dpo_on_a_sample_of_the_published_pairs_with_the_tiny_model(real_data, tmp_path):
    "The notebook with `rlaif.pairs_source = published`: counts, token counts, and DPO on a sample, with the tiny model."
    params = ['-p', 'data_dir', str(real_data), '-y', 'overrides: {"rlaif.pairs_source": "published", "profile.rlaif_limit": 8, "dpo.max_steps": 6, "dpo.max_length": 1024}']
    r = subprocess.run([sys.executable, '-m', 'papermill', str(ROOT/'nbs'/'03_rlaif.ipynb'), str(tmp_path/'out.ipynb'),
                        '--cwd', str(tmp_path), '--no-progress-bar', *params], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    out = tmp_path/'runs'/'tiny'/'03_rlaif'
    m = json.loads((out/'metrics.json').read_text(encoding='utf-8'))
    assert m['source'] == 'published' and m['pairs']['pairs'] == 11163 and m['pairs']['duplicated_ids'] == 203
    assert m['pairs']['sampled'] == 8 and m['pairs_for_dpo'] + m['dropped_by_max_length'] == 8 and m['pairs_for_dpo'] >= 4
    tokens = m['pairs']['tokens']
    assert set(tokens) == {'prompt', 'chosen', 'rejected'} and tokens['rejected'] > tokens['chosen'] > tokens['prompt'] > 11163 * 50
    assert len(list(out.glob('dpo/*/adapter/adapter_config.json'))) == 1 and (out/'dpo_curves.png').exists()
    assert len((out/'pairs.jsonl').read_text(encoding='utf-8').splitlines()) == 8      # the sample DPO trained on, which its spec names
    printed = ''.join(''.join(o.get('text', '')) for c in json.loads((tmp_path/'out.ipynb').read_text())['cells']
                      for o in c.get('outputs', []))
    assert '11163 published pairs; 203 ids repeat' in printed and 'tokens' in printed
