"""Reproduction kit and course for Persian medical language models (Gaokerena-V and Gaokerena-R)

Modules:

- `gaokerena.generation`: How the kit turns prompts into answers: one call, `generate`, on a loaded model; a generator object that carries the model's identity and sampling settings; vLLM in a process of its own where a GPU allows.
- `gaokerena.results`: Every answer a model gives is one keyed JSON line; a run that stops resumes from the file; the papers' numbers and our tables sit side by side."""

__version__ = "0.1.0"
