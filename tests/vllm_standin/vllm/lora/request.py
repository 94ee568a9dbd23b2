"The stand-in's `LoRARequest`: the name, id and folder of an adapter to serve."


class LoRARequest:
    def __init__(self, lora_name, lora_int_id, lora_path):
        self.lora_name, self.lora_int_id, self.lora_path = lora_name, lora_int_id, lora_path
