"The stand-in's `vllm.lora` package."
