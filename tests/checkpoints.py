"""Tiny random checkpoints in the real Orpheus and SNAC layouts.

No model hub is reachable here, so tests build stand-ins that the real loading code reads as
it would read the published weights: a Llama-architecture model with Orpheus's vocabulary
size, a tokenizer with Llama 3's and Orpheus's special tokens at their real ids, and SNAC
24 kHz with the published configuration and random weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from shared.snac.decoder import SNAC_24KHZ_CONFIG
from shared.speech.codec import BOS, END_OF_TEXT, VOCAB_SIZE

LLAMA3_BASE_VOCAB = 128000
LLAMA3_SPECIALS = 256


def _llama3_special_names() -> list[str]:
    named = {
        0: "<|begin_of_text|>",
        1: "<|end_of_text|>",
        4: "<|finetune_right_pad_id|>",
        6: "<|start_header_id|>",
        7: "<|end_header_id|>",
        8: "<|eom_id|>",
        9: "<|eot_id|>",
        10: "<|python_tag|>",
    }
    names, reserved = [], 0
    for i in range(LLAMA3_SPECIALS):
        if i in named:
            names.append(named[i])
        else:
            names.append(f"<|reserved_special_token_{reserved}|>")
            reserved += 1
    return names


def build_tokenizer(directory: Path) -> None:
    """A byte-level tokenizer whose special and Orpheus tokens sit at the real ids."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {ch: i for i, ch in enumerate(alphabet)}
    vocab.update({f"<|filler_{i}|>": i for i in range(len(vocab), LLAMA3_BASE_VOCAB)})
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = _llama3_special_names()
    custom = [
        f"<custom_token_{i}>" for i in range(VOCAB_SIZE - LLAMA3_BASE_VOCAB - LLAMA3_SPECIALS)
    ]
    tok.add_special_tokens([AddedToken(t, special=True) for t in specials])
    tok.add_tokens([AddedToken(t, special=False) for t in custom])
    assert tok.token_to_id("<|begin_of_text|>") == BOS
    assert tok.token_to_id("<|eot_id|>") == END_OF_TEXT
    assert tok.get_vocab_size() == VOCAB_SIZE
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", BOS)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|begin_of_text|>",
        eos_token="<|eot_id|>",
        pad_token="<custom_token_7>",
    )
    fast.save_pretrained(directory)


def build_orpheus(directory: Path, seed: int = 0) -> Path:
    """Write a tiny random Orpheus checkpoint (config, safetensors, tokenizer) to directory."""
    from transformers import LlamaConfig, LlamaForCausalLM

    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=8192,
        bos_token_id=BOS,
        eos_token_id=END_OF_TEXT,
        tie_word_embeddings=True,
        rope_theta=500000.0,
    )
    LlamaForCausalLM(config).save_pretrained(directory)
    build_tokenizer(directory)
    return directory


def build_snac(directory: Path, seed: int = 0) -> Path:
    """Write a random-weight SNAC 24 kHz checkpoint in the published layout."""
    from snac import SNAC

    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = SNAC(**SNAC_24KHZ_CONFIG)
    (directory / "config.json").write_text(json.dumps(SNAC_24KHZ_CONFIG))
    torch.save(model.state_dict(), directory / "pytorch_model.bin")
    return directory
