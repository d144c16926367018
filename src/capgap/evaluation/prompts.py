"""Prompt rendering: zero-shot and k-shot chain-of-thought, through the model's chat template if it has one.

The prompt a student is evaluated with before distillation is exactly the prompt it is trained on and
evaluated with after: `render` is the only place that builds it. `TEMPLATE_VERSION` goes into evaluation
keys, so changing any text here invalidates stored results instead of silently mixing prompts.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from capgap.errors import CapgapError
from capgap.knobs import knob, range_problem
from capgap.models.generation import Request
from capgap.tasks.base import Item, Task
from capgap.tasks.extraction import AnswerType

TEMPLATE_VERSION = 1
PROMPT_STYLES = {
    "zero-shot-cot": "the question and an instruction to reason step by step",
    "few-shot-cot": "k worked examples (question, rationale, 'The answer is N.') before the question",
}
CHAT_MODES = ("auto", "on", "off")
PLAIN_STOP = ("\n\nQuestion:", "\nQuestion:")  # a plain-text model continuing with a new question is done

_FORMATS = {
    AnswerType.NUMBER: 'the sentence "The answer is" followed by the final number',
    AnswerType.CHOICE: 'the sentence "The answer is" followed by the letter of the right choice',
    AnswerType.YESNO: 'the sentence "The answer is yes." or "The answer is no."',
    AnswerType.STRING: 'the sentence "The answer is" followed by the final answer',
    AnswerType.MATH: 'the sentence "The answer is" followed by the final answer in LaTeX',
}


FEW_SHOT_PROMPTS = ("style", ("few-shot-cot",), "few-shot-cot prompts")  # who takes `shots` (config rule)


@dataclass(frozen=True)
class PromptConfig:
    """How a question becomes a prompt: the study YAML's `prompt` sections, `capgap eval`'s flags and the
    evaluation runner all use this class, so each setting's default, range and help are written once."""

    style: str = knob("zero-shot-cot", "zero-shot-cot or few-shot-cot", tuple(PROMPT_STYLES))
    shots: int = knob(4, "worked examples in few-shot-cot", min=1, max=8, only=FEW_SHOT_PROMPTS)
    chat: str = knob("auto", "use the model's chat template: auto (when it has one), on, off", CHAT_MODES)

    def check(self) -> None:
        """The config's rules, for a PromptConfig built in code (a YAML one was checked when it was read)."""
        meta = {f.name: f.metadata for f in fields(self)}
        for name in ("style", "chat"):
            if getattr(self, name) not in meta[name]["choices"]:
                raise CapgapError(f"unknown prompt {name} '{getattr(self, name)}'; valid: "
                                  f"{', '.join(meta[name]['choices'])}")
        problem = range_problem(self.shots, meta["shots"])
        if self.style == "few-shot-cot" and problem:
            raise CapgapError(f"few-shot-cot shots: {problem}")

    def key(self) -> dict:
        """What of this config determines the prompt text (shots only matter for few-shot)."""
        shots = self.shots if self.style == "few-shot-cot" else 0
        return {"style": self.style, "shots": shots, "chat": self.chat, "template_version": TEMPLATE_VERSION}


def instruction(answer_type: AnswerType) -> str:
    return f"Let's think step by step. End with {_FORMATS[answer_type]}."


def user_message(question: str, answer_type: AnswerType) -> str:
    return f"Question: {question}\n{instruction(answer_type)}"


def uses_chat(config: PromptConfig, tokenizer) -> bool:
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if config.chat == "on" and not has_template:
        raise CapgapError("--chat on, but this model's tokenizer has no chat template; use --chat auto or off")
    return has_template if config.chat == "auto" else config.chat == "on"


def exemplars(task: Task, config: PromptConfig) -> list[Item]:
    if config.style != "few-shot-cot":
        return []
    if len(task.exemplars) < config.shots:
        raise CapgapError(f"task '{task.name}' has {len(task.exemplars)} worked examples, fewer than the "
                          f"{config.shots} shots asked for; lower --shots or add rationales to the data")
    return task.exemplars[: config.shots]


def chat_messages(task: Task, item: Item, config: PromptConfig) -> list[dict]:
    """The conversation a chat model sees: the worked examples as earlier turns, then the question."""
    messages = []
    for ex in exemplars(task, config):
        messages += [{"role": "user", "content": user_message(ex.question, task.answer_type)},
                     {"role": "assistant", "content": ex.rationale}]
    messages.append({"role": "user", "content": user_message(item.question, task.answer_type)})
    return messages


def render(task: Task, item: Item, tokenizer, config: PromptConfig) -> str:
    """The exact prompt text; the model's answer continues right after it."""
    if uses_chat(config, tokenizer):
        return tokenizer.apply_chat_template(chat_messages(task, item, config), tokenize=False,
                                             add_generation_prompt=True)
    shots = exemplars(task, config)
    blocks = [f"{user_message(ex.question, task.answer_type)}\nAnswer: {ex.rationale}" for ex in shots]
    blocks.append(f"{user_message(item.question, task.answer_type)}\nAnswer:")
    return "\n\n".join(blocks)


def stop_strings(config: PromptConfig, tokenizer) -> tuple[str, ...]:
    """Chat models end their turn with an end-of-turn token; plain-text ones stop at the next question."""
    return () if uses_chat(config, tokenizer) else PLAIN_STOP


def build_requests(task: Task, items: list[Item], config: PromptConfig, tokenizer, seeds: list[int],
                   server: bool = False) -> list[Request]:
    """What a generator is handed for `items`: the rendered prompt with its stop strings and seed, and for a
    server (`server`: no local tokenizer) the chat messages, unless the prompt's chat is off (then the plain
    text an in-process model would see, completed as is)."""
    chat = False if server else uses_chat(config, tokenizer)
    # a chat server ends the turn itself; a plain completion stops at the next question
    stop = (PLAIN_STOP if config.chat == "off" else ()) if server else stop_strings(config, tokenizer)
    out = []
    for item, seed in zip(items, seeds, strict=True):
        if server and config.chat != "off":
            messages = tuple(chat_messages(task, item, config))
            out.append(Request(_json(messages), seed, (), False, messages))
        else:
            out.append(Request(render(task, item, None if server else tokenizer, config), seed, stop, not chat))
    return out


def _json(messages: tuple[dict, ...]) -> str:
    import json

    return json.dumps(list(messages), ensure_ascii=False)
