"""Multiple-choice data as releases write it: options as a list or a dict, golds as a letter, an index or text.

Options are read from any of the published shapes and shown to the model as "(A) ... (B) ..." in their
order; the gold becomes the letter of the right option, the canonical answer of a choice task:
- a list: ["21", "6000"], or with letters written in, ["A)21", "B)6000"] (AQuA);
- a dict from letter to text: {"A": "21", "B": "6000"};
- a dict of parallel lists: {"label": ["A", "B"], "text": ["21", "6000"]} (CommonsenseQA on the Hub);
- a dict from text to score: {"21": 0, "6000": 1} (BIG-bench's target_scores; the gold may be the same
  field: the option with the top score).
A gold is a letter ("B", "(b)"), the option's text (compared case, space and punctuation folded), or a
0-based index (a JSON number, or digits that match no option's text).
"""

from __future__ import annotations

import hashlib
import random
import re

from capgap.errors import CapgapError
from capgap.tasks.spans import normalize_string

LETTERS = "ABCDEFGH"  # the letters the choice reader takes
_WRITTEN_LETTER = re.compile(r"^\(?([A-Ha-h])\)\s*|^([A-H])[.:]\s+")
_GOLD_LETTER = re.compile(r"^\(?([A-Ha-h])\)?\.?$")
SHAPES = "a list of texts, {letter: text}, {label: [...], text: [...]} or {text: score}"


def _is_score(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _letter_dict(options: dict) -> list[str] | None:
    """{letter: text} options; their letters must be A, B, C... without gaps (else the gold would move)."""
    if not all(isinstance(k, str) and _GOLD_LETTER.match(k) for k in options):
        return None
    ordered = sorted(options, key=lambda k: _GOLD_LETTER.match(k).group(1).upper())
    if "".join(_GOLD_LETTER.match(k).group(1).upper() for k in ordered) != LETTERS[: len(ordered)]:
        return None
    return [str(options[k]) for k in ordered]


def option_texts(value: object, where: str) -> list[str]:
    """The option texts of a record, in the order they are lettered A, B, C..."""
    if isinstance(value, list):
        texts = [_WRITTEN_LETTER.sub("", str(v).strip()) for v in value if v is not None]
    elif isinstance(value, dict) and value and all(_is_score(v) for v in value.values()):
        texts = [str(k) for k in value]
    elif isinstance(value, dict) and isinstance(value.get("text"), list):
        texts = [str(t) for t in value["text"]]
        if len(option_labels(value) or texts) != len(texts):
            raise CapgapError(f"{where}: the options' label and text lists differ in length; fix the record")
    elif isinstance(value, dict) and value and (lettered := _letter_dict(value)) is not None:
        texts = lettered
    else:
        raise CapgapError(f"{where}: cannot read the options field ({type(value).__name__}); write it as {SHAPES}")
    if not 2 <= len(texts) <= len(LETTERS):
        raise CapgapError(f"{where}: {len(texts)} options; a choice task takes 2 to {len(LETTERS)}")
    return [t.strip() for t in texts]


def option_labels(value: object) -> list[str] | None:
    """The labels of {label: [...], text: [...]} options ("A".."E", or "1".."4" as ARC writes them)."""
    if isinstance(value, dict) and isinstance(value.get("label"), list):
        return [str(label).strip() for label in value["label"]]
    return None


def top_scored(value: dict, where: str) -> str:
    """The key of a {text: score} dict with the highest score (BIG-bench's target_scores)."""
    if not value or not all(_is_score(v) for v in value.values()):
        raise CapgapError(f"{where}: the answer is a dict but not of {{text: score}}; map the answer field to "
                          "a letter, an index or the option's text")
    best = max(value.values())
    top = [k for k, v in value.items() if v == best]
    if len(top) > 1:
        raise CapgapError(f"{where}: {len(top)} options share the top score {best} ({', '.join(top[:3])}); "
                          "a gold answer must be one option")
    return str(top[0])


def choice_letter(raw: object, texts: list[str], where: str, labels: list[str] | None = None) -> str:
    """The letter of the gold option, from its label, a letter, a 0-based index, the option's text or a
    score dict. An integer that is also another option's text is ambiguous: an error, not a guess."""
    if isinstance(raw, dict):
        raw = top_scored(raw, where)
    if labels and str(raw).strip() in labels:
        return LETTERS[labels.index(str(raw).strip())]
    folded = [normalize_string(t) for t in texts]
    if _is_score(raw) and float(raw).is_integer():
        index = int(raw)
        if normalize_string(str(index)) in folded and folded.index(normalize_string(str(index))) != index:
            raise CapgapError(f"{where}: gold {raw!r} is ambiguous: the 0-based index of option "
                              f"{LETTERS[index] if 0 <= index < len(texts) else '-'} and the text of option "
                              f"{LETTERS[folded.index(normalize_string(str(index)))]}; give the gold as a letter")
    else:
        text = str(raw).strip()
        letter = _GOLD_LETTER.match(text)
        if letter and LETTERS.index(letter.group(1).upper()) < len(texts):
            return letter.group(1).upper()
        if normalize_string(text) in folded:
            return LETTERS[folded.index(normalize_string(text))]
        index = int(text) if text.isdigit() else -1
    if 0 <= index < len(texts):
        return LETTERS[index]
    shown = " ".join(f"({LETTERS[i]}) {t[:30]}" for i, t in enumerate(texts))
    raise CapgapError(f"{where}: gold {raw!r} is neither a letter, a 0-based index nor the text of one of the "
                      f"options {shown}; fix the value or map the answer field to another one")


def shuffled(texts: list[str], gold: str, key: str) -> tuple[list[str], str]:
    """The options in an order drawn from `key` (the question: the same order in every run and file), and
    the gold's new letter. For releases that list the right option first (BIG-bench date_understanding)."""
    order = random.Random(hashlib.sha256(key.encode()).digest()).sample(range(len(texts)), len(texts))
    return [texts[i] for i in order], LETTERS[order.index(LETTERS.index(gold))]


OPTIONS_MARK = "\nAnswer choices: "


def with_options(question: str, texts: list[str]) -> str:
    """The question as the model sees it: the options lettered after it."""
    return f"{question}{OPTIONS_MARK}{' '.join(f'({LETTERS[i]}) {t}' for i, t in enumerate(texts))}"


def option_count(question: str) -> int:
    """How many lettered options `with_options` put after the question (0 for a question without)."""
    _, mark, shown = question.partition(OPTIONS_MARK)
    return len(re.findall(r"\([A-H]\) ", shown)) if mark else 0


def shown_options(text: str) -> list[str]:
    """The option texts `with_options` put after the last question of `text` (a question, or a whole prompt
    whose exemplars show options too), in letter order; [] when it shows none."""
    _, mark, shown = text.rpartition(OPTIONS_MARK)
    if not mark:
        return []
    rest, texts = shown.split("\n", 1)[0], []
    for i, letter in enumerate(LETTERS):  # letters in order: "(B)" inside an option's text is its text
        if not rest.startswith(f"({letter}) "):
            break
        end = rest.find(f" ({LETTERS[i + 1]}) ") if i + 1 < len(LETTERS) else -1
        texts.append(rest[4 : end if end >= 0 else len(rest)].strip())
        rest = rest[end + 1 :] if end >= 0 else ""
    return texts


def question_stem(question: str) -> str:
    """The question without the options `with_options` added (releases of rationales often keep only it)."""
    return question.split(OPTIONS_MARK, 1)[0]
