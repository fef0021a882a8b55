"""Answer a prompt with the fine-tuned LoRA adapter in ./adapters on its base model.

    pip install -r requirements.txt
    python inference.py "What are the benefits of a Roth IRA?"
    python inference.py "Explain asset allocation" --max-tokens 400 --temperature 0.7
    python inference.py "..." --load-in-4bit            # on a CUDA GPU with bitsandbytes: a quarter of the memory

The base model is the one the adapter was trained on (adapter_config.json, `base_model_name_or_path`;
./base_model when the package holds it);
`--base-model` points to another copy of it (a local folder, or a Hugging Face id you have access to).
The system prompt the adapter was trained with is used unless `--system` gives another."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ADAPTERS = HERE / "adapters"
BUNDLED_BASE = HERE / "base_model"  # a base without a public id travels in the package


def arguments(argv: list[str] | None) -> argparse.Namespace:
    config = json.loads((ADAPTERS / "adapter_config.json").read_text())
    summary_file = HERE / "training_summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
    parser = argparse.ArgumentParser(description="Answer a prompt with the fine-tuned adapter.")
    parser.add_argument("prompt", help="the question or message to answer")
    trained_on = str(BUNDLED_BASE) if BUNDLED_BASE.is_dir() else config.get("base_model_name_or_path")
    parser.add_argument("--base-model", default=trained_on,
                        help="the base model (default: the one the adapter was trained on)")
    parser.add_argument("--system", default=summary.get("system_prompt"), help="the system prompt")
    parser.add_argument("--max-tokens", type=int, default=256, help="the most tokens to generate (default 256)")
    parser.add_argument("--temperature", type=float, default=0.7, help="0 answers greedily (default 0.7)")
    parser.add_argument("--load-in-4bit", action="store_true", help="4-bit NF4 weights (CUDA and bitsandbytes)")
    args = parser.parse_args(argv)
    if not args.base_model:
        parser.error("the adapter names no base model: give --base-model")
    if args.max_tokens < 1 or args.temperature < 0:
        parser.error("--max-tokens must be at least 1 and --temperature not negative")
    return args


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cuda = torch.cuda.is_available()
    options: dict = {"dtype": torch.bfloat16 if cuda else torch.float32}
    if cuda:
        options["device_map"] = "auto"
    if args.load_in_4bit:
        from transformers import BitsAndBytesConfig

        options["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=options["dtype"])
    tokenizer_source = ADAPTERS if (ADAPTERS / "tokenizer_config.json").exists() else args.base_model
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(args.base_model, **options), ADAPTERS)
    model.eval()
    messages = ([{"role": "system", "content": args.system}] if args.system else []) + [
        {"role": "user", "content": args.prompt}]
    text = (tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            if tokenizer.chat_template else f"{args.system or ''}\n\n{args.prompt}\n")
    inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(model.device)
    sampling = {"do_sample": True, "temperature": args.temperature} if args.temperature > 0 else {"do_sample": False}
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=args.max_tokens,
                                pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None
                                else tokenizer.eos_token_id, **sampling)
    print(tokenizer.decode(output[0, inputs["input_ids"].shape[-1]:], skip_special_tokens=True).strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
