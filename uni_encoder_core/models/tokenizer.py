"""Word-level tokenizer for the segmentation head's task prompts and text queries.

OneFormer conditions its decoder on a task prompt ("the task is panoptic") and, during training,
contrasts its object queries with text queries ("a photo with a car"). The vocabulary here is
fixed and tiny: padding/start/end tokens, the prompt words and the Cityscapes class names, so
nothing is downloaded. As in CLIP, the end token has the largest id, which the OneFormer text
encoder relies on (it reads the feature at ``argmax(ids)``).
"""

from __future__ import annotations

import torch

from uni_encoder_core.labels import CLASS_NAMES

TASKS = ("panoptic", "instance", "semantic")

PAD, START = "<pad>", "<start>"
END = "<end>"
_PROMPT_WORDS = ("the", "task", "is", "a", "an", "photo", "with", *TASKS)


def _class_words() -> list[str]:
    words: list[str] = []
    for name in CLASS_NAMES:
        words += [w for w in name.split() if w not in words]
    return words


VOCABULARY = (PAD, START, *_PROMPT_WORDS, *(w for w in _class_words() if w not in _PROMPT_WORDS), END)
"""All tokens; the index is the id (``<pad>`` = 0, ``<end>`` = the largest id)."""


def task_prompt(task: str) -> str:
    """OneFormer's task prompt, e.g. ``"the task is panoptic"``."""
    if task not in TASKS:
        raise ValueError(f"unknown segmentation task '{task}' (known: {', '.join(TASKS)})")
    return f"the task is {task}"


def class_prompt(class_id: int) -> str:
    """OneFormer's text query for a class (train id), e.g. ``"a photo with a car"``."""
    return f"a photo with a {CLASS_NAMES[class_id]}"


def filler_prompt(task: str) -> str:
    """Text that fills the unused text-query slots of an image trained for ``task``."""
    return f"{'an' if task == 'instance' else 'a'} {task} photo"


class Tokenizer:
    """Maps prompts to ``<start> words <end> <pad>...`` id sequences of length ``context_length``."""

    def __init__(self, context_length: int = 77):
        if context_length < 3:
            raise ValueError(f"context_length must be at least 3 (start, a word, end), got {context_length}")
        self.context_length = context_length
        self.ids = {word: i for i, word in enumerate(VOCABULARY)}

    @property
    def vocab_size(self) -> int:
        """Number of tokens (embedding rows of the text encoder)."""
        return len(VOCABULARY)

    def encode(self, text: str) -> list[int]:
        """Ids of one prompt (lower-cased, split on whitespace), padded to ``context_length``."""
        words = text.lower().split()
        unknown = [w for w in words if w not in self.ids or w in (PAD, START, END)]
        if unknown:
            raise ValueError(f"word '{unknown[0]}' in {text!r} is not in the segmentation vocabulary")
        if len(words) + 2 > self.context_length:
            raise ValueError(
                f"{text!r} has {len(words)} words: with start and end tokens it exceeds "
                f"the context length {self.context_length}"
            )
        ids = [self.ids[START], *(self.ids[w] for w in words), self.ids[END]]
        return ids + [self.ids[PAD]] * (self.context_length - len(ids))

    def __call__(self, texts: list[str]) -> torch.Tensor:
        """Ids of several prompts: ``N x context_length`` int64."""
        return torch.tensor([self.encode(t) for t in texts], dtype=torch.int64).reshape(-1, self.context_length)
