"""The miniature world (nbs/99_world.ipynb): a sound knowledge base, deterministic datasets the kit's loaders accept, answers the
extractor reads, held-out facts never asked in training, a scripted teacher that does methods A and B, English glosses."""
import random, re
from collections import Counter
import pytest
from gaokerena.config import load_settings
from gaokerena.rows import LETTERS
from gaokerena.sources import load_rows, normalise, row_issues
from gaokerena.extract import extract_choice
from gaokerena.evaluate import render_prompt
from gaokerena.llm import ChatBackend
from gaokerena.rlaif import build_pair
from gaokerena.rounds import pair_rows
from gaokerena.world import (CHAINS, FACTS, NOT_DISTRACTORS, RELATIONS, UNKNOWN, WorldTeacher, build_world, chain_items,
                             cloze_items, distractor_pool, fact_parts, gloss, statement, world_facts, world_texts)


@pytest.fixture(scope='module')
def world():
    return build_world()


def test_knowledge_base_is_well_formed():
    facts = world_facts()
    assert 150 <= len(facts) <= 400 and len({f['id'] for f in facts}) == len(facts)
    for r, rows in FACTS.items():
        assert len(rows) >= 5 and r in RELATIONS, r
        assert len({s for s, *_ in rows}) == len(rows), f'{r}: a subject twice'
        assert all(x.strip() for row in rows for x in row), r
        assert len({o for *_, o, _ in rows}) >= 4, f'{r}: fewer than four objects cannot make four options'
    for rel in RELATIONS.values():   # every Persian pattern has an English gloss with the same slots
        for fa, en in (*rel.statements, rel.question, rel.forum):
            assert set(re.findall(r'\{\w\}', fa)) == set(re.findall(r'\{\w\}', en)) and '{s}' in fa, fa
        assert '{o}' in rel.statements[0][0] and '{o}' not in rel.question[0]


def test_chains_join_two_true_facts():
    facts = world_facts()
    chains = chain_items(facts)
    assert len(chains) >= 40 and {c['chain'] for c in chains} == set(range(len(CHAINS)))
    known = {(f['relation'], f['s'], f['o']) for f in facts}
    for c in chains:
        a, b = c['steps']
        assert a['o'] == b['s'] and (a['relation'], a['s'], a['o']) in known and (b['relation'], b['s'], b['o']) in known


def test_distractors_are_never_true_or_excluded():
    for r, banned in NOT_DISTRACTORS.items():
        for subject, objects in banned.items():
            if subject == '*': continue
            gold = next(o for s, _, o, _ in FACTS[r] if s == subject)
            assert not objects & set(distractor_pool(r, subject, gold)), (r, subject)
    assert 'دستگاه درون‌ریز' not in distractor_pool('organ_system', 'قلب', 'دستگاه گردش خون')


def test_the_world_is_deterministic(world):
    assert build_world() == world
    assert build_world(seed=1)['mcq'] != world['mcq']


def test_datasets_fit_the_kits_schema(world):
    kinds = {'corpus': 'corpus', 'qa_train': 'qa', 'qa_test': 'qa', 'mcq': 'mcq', 'medmcqa': 'mcq'}
    for name, kind in kinds.items():
        problems = [(r['id'], i) for r in world[name] for i in row_issues(r, kind)]
        assert not problems, (name, problems[:3])
    facts = {f['id']: f for f in world_facts()}
    for q in world['mcq'] + world['medmcqa']:
        assert len(set(q['options'].values())) == 4 and q['options'][q['gold']] == facts[q['facts'][-1]]['o']
    assert Counter(q['subject'] for q in world['mcq']).keys() == {'anatomy', 'medical_genetics', 'college_medicine', 'clinical_knowledge',
                                                                  'professional_medicine', 'college_biology', 'ibmsee'}
    assert len(world['mcq']) >= 100 and len(world['medmcqa']) >= 100
    # the loaders read the world under the real datasets' names
    assert len(load_rows('mmlu/anatomy', 'world').rows) == sum(q['subject'] == 'anatomy' for q in world['mcq'])
    assert len(load_rows('medmcqa/filtered', 'world').rows) == len(world['medmcqa'])


def test_gold_answers_are_balanced_over_letters(world):
    golds = Counter(q['gold'] for q in world['mcq'])
    assert set(golds) == set(LETTERS) and max(golds.values()) < 0.4 * len(world['mcq'])


def test_held_out_facts_are_only_in_the_corpus(world):
    parts = fact_parts(world)
    held = {i for i, p in parts.items() if p == 'held_out'}
    assert 10 <= len(held) <= 40 and {q['part'] for q in world['mcq']} == {'trained', 'held_out', 'chain'}
    asked = {i for r in world['qa_train'] + world['qa_test'] + world['medmcqa'] for i in r['facts']}
    asked |= {i for a in world['corpus'] for i in a.get('facts', [])}           # the corpus's printed quizzes
    assert not held & asked
    stated = ' '.join(a['text'] for a in world['corpus'])
    for f in world_facts():
        if f['id'] in held: assert sum(stated.count(statement(f, k)) for k in range(len(RELATIONS[f['relation']].statements))) >= 20, f


def test_rlaif_and_exam_chains_differ(world):
    exam = {q['question'] for q in world['mcq'] if q['part'] == 'chain'}
    rlaif = {q['question'] for q in world['medmcqa'] if q['part'] == 'chain'}
    assert exam and rlaif and not exam & rlaif


def test_extractor_reads_every_world_answer(world):
    rows = world['mcq'] + world['medmcqa'] + [r for r in world['qa_train'] if 'options' in r]
    assert all(extract_choice(r['answer'], r['question'], r['options']) == LETTERS[list(r['options'].values()).index(
        r['answer'].rsplit('« ', 1)[1].removesuffix('».'))] for r in rows)
    assert all(extract_choice(q['answer'], q['question'], q['options']) == q['gold'] for q in world['mcq'] + world['medmcqa'])


def test_world_text_survives_normalisation(world):
    "00_data normalises training text: the world is written so that nothing changes (answers stay the form the extractor reads)."
    assert all(normalise(t) == t for t in world_texts(world))


def test_cloze_items_end_where_the_object_starts():
    for (prefix, obj), f in zip(cloze_items(world_facts()), world_facts()):
        assert statement(f).startswith(prefix + ' ' + obj), f


def test_gloss_reads_everything_the_world_writes(world):
    texts = [a['text'] for a in world['corpus'][:200] if 'facts' not in a]
    texts += [r[k] for r in world['qa_train'][:100] for k in ('question', 'answer')] + [q['answer'] for q in world['mcq']]
    assert not [t for t in texts if '[?]' in gloss(t)]
    assert gloss('سلام. داروی سالبوتامول برای درمان آسم به کار می‌رود.') == 'Hello. The drug salbutamol is used to treat asthma.'
    assert gloss('کبد کبد را') == '[?] کبد کبد را'


def test_scripted_teacher_methods_a_and_b(world):
    settings = load_settings('tiny', overrides={'rlaif.max_student_retries': 2})
    teacher = WorldTeacher(world)
    q = next(q for q in world['medmcqa'] if q['part'] == 'chain')
    wrong = next(k for k in LETTERS if k != q['gold'])

    class Student(ChatBackend):
        "A student that names a wrong option first, then the right one on its retry."
        name, cache_dir = 'student', None
        def __init__(self): self.calls = 0
        def _complete(self, messages, **params):
            self.calls += 1
            return (f"پس پاسخ صحیح: گزینه « {q['options'][wrong]}»." if self.calls == 1 else q['answer']), 10, 10

    a = build_pair(q, 'A', Student(), teacher, settings)
    assert a['outcome'] == 'pair' and a['chosen'] == q['answer'] and a['chosen_choice'] == q['gold'] == extract_choice(a['chosen'], q['question'], q['options'])
    assert a['chosen'].count('. ') >= 2          # a two-fact chain: both facts stated before the answer
    b = build_pair(q, 'B', Student(), teacher, settings)
    critique = b['teacher_text']
    assert b['outcome'] == 'pair' and b['method'] == 'B' and b['chosen'] == q['answer']
    assert not any(o in critique for o in q['options'].values()) and extract_choice(critique, q['question'], q['options']) not in LETTERS
    stranger = {**q, 'id': 'x', 'question': 'پرسشی که در جهان نیست؟'}
    assert build_pair(stranger, 'A', Student(), teacher, settings)['outcome'] == 'teacher_missed_gold'
    assert teacher.chat([{'role': 'user', 'content': 'سلام'}]).text == UNKNOWN[0]
    assert pair_rows([a])[0]['chosen'] == q['answer']


def test_quiz_rows_are_asked_in_the_straight_prompt(world):
    from gaokerena.sft import chat_dataset
    quiz = next(r for r in world['qa_train'] if 'options' in r)
    forum = next(r for r in world['qa_train'] if 'options' not in r)
    rows = chat_dataset([quiz, forum])
    assert rows[0]['prompt'][0]['content'] == render_prompt(quiz) and rows[1]['prompt'][0]['content'] == forum['question']
