"""A stand-in for the `vllm` package, a boundary we do not own and cannot install without CUDA.

It records every engine it builds and every batch it is asked to generate (one JSON line each, in the file named
by $GAOKERENA_VLLM_LOG) and answers with a fixed Persian answer whose letter depends on the prompt's length, so
the tests can check what the kit asks of vLLM: the engine's arguments, the sampling parameters, the LoRA adapter
it serves and how many prompts arrive at once. Tests put this folder on sys.path; nothing else does."""
import json, os, time


def _log(**event):
    with open(os.environ['GAOKERENA_VLLM_LOG'], 'a', encoding='utf-8') as f:
        f.write(json.dumps({**event, 'pid': os.getpid(), 't': time.time()}, ensure_ascii=False) + '\n')


class SamplingParams:
    "Keeps the keyword arguments it was built with."
    def __init__(self, **kwargs): self.kwargs = kwargs


class _Completion:
    def __init__(self, text): self.text = text


class _RequestOutput:
    def __init__(self, text): self.outputs = [_Completion(text)]


class LLM:
    "Records its arguments; `generate` records the batch and answers «پاسخ صحیح گزینه [X]» ('the correct answer option [X]')."
    def __init__(self, **kwargs):
        _log(event='init', kwargs=kwargs)

    def generate(self, prompts, sampling_params, use_tqdm=True, lora_request=None):
        lora = None
        if lora_request is not None:
            path = lora_request.lora_path
            config = json.load(open(os.path.join(path, 'adapter_config.json'), encoding='utf-8'))
            lora = {'name': lora_request.lora_name, 'id': lora_request.lora_int_id, 'path': path, 'rank': config['r']}
        _log(event='generate', n=len(prompts), params=[p.kwargs for p in sampling_params], lora=lora,
             lengths=[len(p['prompt_token_ids']) for p in prompts])
        return [_RequestOutput(f"پاسخ صحیح گزینه [{'ABCD'[len(p['prompt_token_ids']) % 4]}]") for p in prompts]
