"The hand-written decoding pieces of gaokerena.generation against the transformers whose internals they replace: the versions they were measured and checked on, and the signatures they rely on (that they decode exactly what transformers decodes is tests/test_eval.py's)."
import inspect
import transformers
from packaging.specifiers import SpecifierSet
from transformers.cache_utils import DynamicLayer
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import sdpa_mask
from gaokerena.generation import BufferedLayer, decoding_mask, grouped_sdpa

# bench/decoding.py on transformers 5.17 (bench/README.md): the kit's path 1.6-1.7x the static cache, 1.5-2.1x the default cache
CHECKED_WITH = SpecifierSet('>=5.17,<5.18')


def test_decoding_pieces_were_checked_against_the_installed_transformers():
    v = transformers.__version__
    assert v in CHECKED_WITH, (f"transformers {v}: fast_decoding, grouped_sdpa, decoding_mask and BufferedLayer were measured and "
                               f"checked on transformers {CHECKED_WITH}. Run bench/decoding.py and tests/test_eval.py, then widen "
                               "CHECKED_WITH, or drop the pieces if transformers' own cache is as fast")


def test_the_replaced_internals_keep_the_signatures_the_pieces_rely_on():
    mask = inspect.signature(sdpa_mask).parameters
    assert all(p in mask for p in inspect.signature(decoding_mask).parameters if p != 'kwargs')   # forwarded by name
    ours, theirs = inspect.signature(grouped_sdpa).parameters, inspect.signature(sdpa_attention_forward).parameters
    assert list(ours)[:7] == list(theirs)[:7] == ['module', 'query', 'key', 'value', 'attention_mask', 'dropout', 'scaling']
    assert issubclass(BufferedLayer, DynamicLayer) and BufferedLayer.update is not DynamicLayer.update
    assert all(hasattr(DynamicLayer, a) for a in ('lazy_initialization', 'get_seq_length'))
    assert list(inspect.signature(DynamicLayer.update).parameters)[:3] == ['self', 'key_states', 'value_states']
