"""Whisper's tokenizer files for a vocabulary size no installed model has, from one that shares its BPE.

Every multilingual Whisper shares one byte-level BPE vocabulary; what differs is the number of
languages, and so the ids of the special tokens after them. They follow the BPE tokens in a fixed
order: end of text, start of transcript, one token per language, translate, transcribe, start of
LM, start of previous text, no speech, no timestamps, then 1501 timestamps (0.00 to 30.00 s, every
0.02 s). v1/v2 (51865 tokens) know 99 languages, large-v3 and turbo (51866) one more, Cantonese.
So the files of `large-v3` are the files of `base` with the special tokens numbered again: this is
what `rebuild_vocabulary` writes (tokenizer.json, vocabulary.txt and the token ids of config.json).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from whisper_api.engine.languages import LANGUAGES
from whisper_api.errors import ModelUnavailableError

TIMESTAMPS = 1501
#: The special tokens after the languages, in order ("nocaptions" was renamed "nospeech" with v3).
_AFTER_LANGUAGES = ("translate", "transcribe", "startoflm", "startofprev", None, "notimestamps")
_NO_SPEECH = ("<|nocaptions|>", "<|nospeech|>")


def is_multilingual(n_vocab: int) -> bool:
    return n_vocab >= 51865


def language_count(n_vocab: int) -> int:
    """Languages of a Whisper vocabulary size (openai-whisper's rule: 99 for 51865, 100 for 51866)."""
    return n_vocab - 51765 - int(is_multilingual(n_vocab))


def vocabulary_size(folder: Path) -> int:
    with (folder / "vocabulary.txt").open(encoding="utf-8") as fh:
        return sum(1 for _ in fh)


class _Specials:
    """The special tokens of a source model's tokenizer.json, by role."""

    def __init__(self, tokenizer: dict[str, Any]) -> None:
        added = sorted(tokenizer["added_tokens"], key=lambda t: t["id"])
        names = [t["content"] for t in added]
        self.by_name = {t["content"]: t for t in added}
        self.eot = self.by_name["<|endoftext|>"]["id"]
        first = names.index("<|startoftranscript|>") + 1
        last = names.index("<|translate|>")
        self.languages = [name[2:-2] for name in names[first:last]]
        self.no_speech = next(name for name in _NO_SPEECH if name in self.by_name)

    def names(self, languages: int) -> list[str]:
        """Every special token's name, timestamps included, in id order from end of text."""
        codes = self.languages[:languages]
        codes += [code for code in LANGUAGES if code not in codes][: languages - len(codes)]
        if len(codes) < languages:
            raise ModelUnavailableError(f"Whisper knows no vocabulary of {languages} languages.")
        after = [self.no_speech if role is None else f"<|{role}|>" for role in _AFTER_LANGUAGES]
        stamps = [f"<|{i * 0.02:.2f}|>" for i in range(TIMESTAMPS)]
        return ["<|endoftext|>", "<|startoftranscript|>", *(f"<|{c}|>" for c in codes), *after, *stamps]


def rebuild_vocabulary(source: Path, n_vocab: int, out: Path) -> dict[str, Any]:
    """Write tokenizer.json and vocabulary.txt for `n_vocab` tokens into `out`, from the multilingual
    model in `source`; return `source`'s config.json with the token ids renumbered to match."""
    if not (is_multilingual(n_vocab) and is_multilingual(vocabulary_size(source))):
        raise ModelUnavailableError("Only multilingual vocabularies can be rebuilt from another model.")
    tokenizer = json.loads((source / "tokenizer.json").read_text(encoding="utf-8"))
    specials = _Specials(tokenizer)
    names = specials.names(language_count(n_vocab))
    if specials.eot + len(names) != n_vocab:
        raise ModelUnavailableError(f"{source}'s tokenizer does not fit a {n_vocab}-token vocabulary.")
    new_id = {name: specials.eot + i for i, name in enumerate(names)}

    template = specials.by_name["<|en|>"]
    added = []
    for name in names:
        if name.startswith("<|") and name[2:3].isdigit():
            break  # timestamps are not added tokens (the source's tokenizer has none either)
        token = copy.deepcopy(specials.by_name.get(name, template))
        added.append({**token, "id": new_id[name], "content": name})
    rebuilt = {**tokenizer, "added_tokens": added}
    processor = copy.deepcopy(tokenizer.get("post_processor"))
    for name, entry in ((processor or {}).get("special_tokens") or {}).items():
        entry["ids"] = [new_id[name]]
    rebuilt["post_processor"] = processor
    out.mkdir(parents=True, exist_ok=True)
    (out / "tokenizer.json").write_text(json.dumps(rebuilt, ensure_ascii=False, indent=2), encoding="utf-8")

    bpe = (source / "vocabulary.txt").read_text(encoding="utf-8").split("\n")[: specials.eot]
    (out / "vocabulary.txt").write_text("\n".join([*bpe, *names]) + "\n", encoding="utf-8")

    config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    old_name = {token["id"]: name for name, token in specials.by_name.items()}

    def renumber(token: int) -> int:
        return token if token < specials.eot else new_id[old_name[token]]

    config["lang_ids"] = [new_id[name] for name in names[2 : 2 + language_count(n_vocab)]]
    for key in ("suppress_ids", "suppress_ids_begin"):
        if key in config:
            config[key] = [renumber(int(token)) for token in config[key]]
    return config
