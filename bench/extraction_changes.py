"""What an extraction version changes: the current extraction against an earlier one, on known and real text.

    python bench/extraction_changes.py [--base 3] [--gsm8k-store /tmp/gsm8k-ext.sqlite]

The earlier version (`--base`, default the one before the current) is loaded from git history: the answer
reading modules of `src/capgap/tasks` at the newest commit that carried it, imported side by side with
today's. Each text is graded by both, the same way:
1. A corpus of realistic generations with known golds (the formats of the extraction audit plus ordinary
   "The answer is N." rationales): how often each grader's verdict matches the truth, strict and flexible,
   and math-verify alone (`verify(parse(gold), parse(generation))`). Every case states either the gold or a
   different value, so the truth is known by construction.
2. The real teacher rationales of the shipped CPU studies (SVAMP's six teachers and human, StrategyQA's
   teachers, AQuA's annotators; ../shared/data), joined to their pool questions' gold answers: per
   teacher, how many verdicts change (the answer is strict, else flexible), with examples and reason tags.
   "right→wrong" must stay 0.
3. Stored GSM8K generations of the real student (a `capgap eval ... --store` sqlite file; skipped when
   absent), produced by
   capgap eval --model smollm2-135m-instruct --task gsm8k --data ../shared/data/gsm8k/test.jsonl \\
       --limit 60 --max-new-tokens 192 --store /tmp/gsm8k-ext.sqlite
Parts 2 and 3 are skipped with a message when their data is absent. Prints tables, writes JSON (default
bench/results/extraction_changes.json).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from capgap.tasks import extraction as current
from capgap.tasks import grading as current_grading

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = [ROOT / "examples" / name for name in
           ("svamp-six-teachers-cpu.yaml", "strategyqa-five-teachers-cpu.yaml", "aqua-multiple-choice-cpu.yaml")]
TASKS = "src/capgap/tasks"
# the modules an answer is read with; an old commit holds some of them
READING = ("numbers", "expressions", "notation", "spans", "hedges", "choices", "extraction", "grading")


@dataclass(frozen=True)
class Grader:
    """One extraction version: what it reads from a text and whether that is the gold."""

    name: str
    extraction: ModuleType
    grading: ModuleType

    def extract(self, text: str, kind: str, options: list[str] | None = None):
        answer_type = self.extraction.AnswerType(kind)
        if options and "options" in self.extraction.extract.__code__.co_varnames:
            return self.extraction.extract(text, answer_type, options)
        return self.extraction.extract(text, answer_type)

    def check(self, answer: str | None, gold: str, kind: str) -> bool:
        answer_type = self.extraction.AnswerType(kind)
        try:
            canonical = self.grading.canonical_gold(gold, answer_type)
        except ValueError:
            return False
        return bool(self.grading.is_correct(answer, canonical, answer_type))


def load_version(version: int) -> Grader:
    """Extraction `version` from git history: its reading modules, imported as a package of their own."""
    commits = subprocess.run(["git", "log", "--format=%H", "--", f"{TASKS}/extraction.py"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
    for commit in commits:
        text = subprocess.run(["git", "show", f"{commit}:{TASKS}/extraction.py"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout
        if re.search(rf"^EXTRACTION_VERSION = {version}\b", text, re.MULTILINE):
            return _import_at(commit, version)
    raise SystemExit(f"no committed extraction.py with EXTRACTION_VERSION = {version} in git history")


def _import_at(commit: str, version: int) -> Grader:
    package = f"capgap_extraction_v{version}"
    folder = Path(tempfile.mkdtemp()) / package
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    for name in READING:
        shown = subprocess.run(["git", "show", f"{commit}:{TASKS}/{name}.py"], cwd=ROOT, capture_output=True,
                               text=True)
        if shown.returncode == 0:
            (folder / f"{name}.py").write_text(shown.stdout.replace("capgap.tasks.", f"{package}."))
    sys.path.insert(0, str(folder.parent))
    extraction = importlib.import_module(f"{package}.extraction")
    has_grading = (folder / "grading.py").is_file()
    grading = importlib.import_module(f"{package}.grading") if has_grading else extraction
    return Grader(f"v{version}", extraction, grading)


def current_grader() -> Grader:
    return Grader(f"v{current.EXTRACTION_VERSION}", current, current_grading)


def _body(rng: random.Random) -> tuple[str, int]:
    """A short arithmetic rationale and its result, like the teachers' and the student's."""
    a, b = rng.randint(2, 90), rng.randint(2, 90)
    op = rng.choice(["+", "-", "*"])
    value = {"+": a + b, "-": a - b, "*": a * b}[op]
    return f"Tom has {a} apples and gets {b} more boxes. So {a} {op} {b} = {value}.", value


def corpus(seed: int = 0) -> list[dict]:
    """(category, generation, gold, truth): truth says whether the generation's final answer is the gold."""
    rng = random.Random(seed)
    cases: list[dict] = []

    def add(category: str, generation: str, gold: str, truth: bool) -> None:
        """One case: `truth` says whether the generation's final answer equals `gold`."""
        cases.append({"category": category, "generation": generation, "gold": gold, "truth": truth})

    phrasings = ["The answer is {}.", "Therefore, the answer is {}.", "So the final answer is {}.",
                 "Answer: {}", "The answer is: {}"]
    for i in range(40):
        body, value = _body(rng)
        truth = i % 4 != 3
        stated = value if truth else value + rng.choice([1, 2, 10])
        add("plain 'The answer is N.'", f"{body} {phrasings[i % len(phrasings)].format(stated)}", str(value), truth)
    _formats(add, rng)
    _families(add)
    _audit(add)
    return cases


def _formats(add, rng: random.Random) -> None:
    """Markdown, currency, percentages, LaTeX, GSM8K and PaLM formats, each right and wrong."""
    for truth in (True, False):
        k = 0 if truth else 1
        add("markdown bold", f"3 + 4 = 7 pens.\n**Final Answer:** {7 + k}", "7", truth)
        add("markdown bold", f"We need 6 * 7 = 42. The answer is **{42 + k}**.", "42", truth)
        add("currency, commas", f"Total: 1234.5 dollars. The answer is ${1234 + k:,}.50.", "1234.5", truth)
        add("currency, commas", f"She earns $1,200 a week, so the answer is ${3600 + k:,}.", "3600", truth)
        add("percent", f"40 of 160 is a quarter. The answer is {25 + k}%.", "25", truth)
        add("boxed", f"Adding, 12 + 30 = 42, so $\\boxed{{{42 + k}}}$.", "42", truth)
        add("boxed nested", f"Half of it: \\boxed{{\\frac{{{1 + k}}}{{2}}}}", "0.5", truth)
        add("boxed last wins", f"First \\boxed{{{40 + 2 * (1 - k)}}}, then corrected: \\boxed{{{42 + k}}}", "42", truth)
        add("final answer:", f"Each box holds 8, 8 x 9 = 72.\nFinal answer: {72 + k}", "72", truth)
        add("PaLM expression", f"He scored 84 points in 2 rounds. The answer is ({84 + 2 * k} / 2).", "42", truth)
        add("PaLM expression", f"There are 3 rows of 4. The answer is 3 × {4 + k}.", "12", truth)
        add("PaLM expression", f"The answer is 5120 / 25 = {20 + k}. Each pack costs that.", "20", truth)
        add("GSM8K ####", f"Natalia sold 48 / 2 = 24 clips in May.\n#### {72 + k}", "72", truth)
        add("GSM8K ####", f"She sold 48 + 24 = 72 clips.\n####{72 + k}", "72", truth)
        add("GSM8K heading", f"#### Step 1:\nShe has 30.\n#### Step 2:\nShe gets {12 + k}.\nThe answer is {42 + k}.",
            "42", truth)
        add("unicode minus", f"The temperature fell 5 degrees from 0. The answer is \u2212{5 + k}.", "-5", truth)
        add("scientific", f"The distance is 3.2 × 10^5 km. The answer is {3.2 + k}e5.", "320000", truth)
        add("number words", f"Six plus six gives a dozen. The answer is {['twelve', 'thirteen'][k]}.", "12", truth)
        add("number words", f"The answer is {['forty-two', 'forty-three'][k]}.", "42", truth)
        add("number words", f"The answer is one hundred and {['five', 'six'][k]}.", "105", truth)
        add("fractions", f"Three of the four slices are left: {3 + k}/4", "0.75", truth)
        add("fractions", f"The answer is \\frac{{{3 + k}}}{{4}}.", "0.75", truth)
        add("answer then justification", f"The answer is {12 + k}, since 3 × 4 = 12 (not 3 + 4 = 7).", "12", truth)
        add("decimal forms", f"The answer is {['.50', '.55'][k]}.", "0.5", truth)
        n = rng.randint(10**5, 10**7)
        add("large integers", f"The total is {n + k}. The answer is {n + k}.", str(n), truth)


def _families(add) -> None:
    """The families version 4 reads (held-out check of issue 23), each stated right and wrong."""
    for truth in (True, False):
        k = 0 if truth else 1
        add("v4: digit groups", f"The answer is 1 234 {567 + k}.", "1234567", truth)
        add("v4: digit groups", f"The answer is 1,00,00{k}.", "100000", truth)
        add("v4: scale words", f"The answer is {2 + k} million dollars.", "2000000", truth)
        add("v4: scale words", f"So the total is {3 + k} thousand.\nThe answer is {3 + k} thousand", "3000", truth)
        add("v4: times ten", f"The answer is {1.5 + k} × 10^6.", "1500000", truth)
        add("v4: times ten", f"So $\\boxed{{{2 + k} \\times 10^{{-3}}}}$", "0.002", truth)
        add("v4: signs", f"The answer is negative {7 + k}.", "-7", truth)
        add("v4: signs", f"He is short. The answer is -${20 + k}.", "-20", truth)
        add("v4: currency", f"The answer is Rs. {450 + k}.", "450", truth)
        add("v4: currency", f"The answer is {5 + k} dollars and 50 cents.", "5.5", truth)
        add("v4: computation", f"The answer is 50% of 80, which is {40 + k}.", "40", truth)
        add("v4: display math", f"Adding up:\nThe answer is\n$$\n{12 + k}\n$$", "12", truth)
        add("v4: markdown", f"3 * 14 = 42\n### Final Answer\n**{42 + k}**", "42", truth)
        add("v4: markdown", f"#### 1. Add them\n3 + 4 = 7\nThe answer is {7 + k}.", "7", truth)
        add("v4: chat turn", f"The answer is {7 + k}.<|im_end|>\n<|im_start|>user\nThe answer is 9.", "7", truth)
        add("v4: check after", f"The answer is {9 + k}. Double-check: 9 - 4 = 5.", "9", truth)
        add("v4: hypothesis after", f"The answer is {12 + k}. Someone might think the answer is 15, but no.",
            "12", truth)


def _audit(add) -> None:
    """The audit's cases: each states the gold (or not) in the way that fooled version 1."""
    add("tolerance", "The answer is 1000000.", "1000001", False)
    add("tolerance", "The answer is 1000001.", "1000001", True)
    add("negation", "The answer isn't 5. It's 6.", "6", True)
    add("negation", "The answer isn't 5. It's 6.", "5", False)
    add("negation", "The answer is 45.\nNote: the answer is not 50", "45", True)
    add("negation", "The answer is 45.\nNote: the answer is not 50", "50", False)
    add("negation", "The answer is not 7 but 8.", "8", True)
    add("answer then justification", "The answer is 12, since 3 × 4 = 12 (not 3 + 4 = 7).", "7", False)
    add("looping", "The answer is " + " + ".join(["5"] * 1200), "6000", False)
    add("looping", "The answer is 5 + 5 + … (1,200 terms)", "10", False)
    add("GSM8K heading", "#### Step 2:\nAdd them up: 3 + 4 = 7", "2", False)


def _verdict(grader: Grader, text: str, gold: str, flexible: bool = False) -> bool | None:
    try:
        got = grader.extract(text, "number")
    except RecursionError:
        return None  # version 1 aborts the evaluation on the looping case
    return grader.check(got.flexible if flexible else got.strict, gold, "number")


def _math_verify(text: str, gold: str) -> bool:
    from math_verify import parse, verify
    return bool(verify(parse(gold), parse(text)))


def score_corpus(old: Grader, new: Grader) -> tuple[list[dict], dict]:
    """Each case graded by both versions (strict and flexible) and math-verify; per-category agreement."""
    rows = []
    for case in corpus():
        text, gold, truth = case["generation"], case["gold"], case["truth"]
        row = {**case, "math_verify_ok": _math_verify(text, gold) == truth}
        for grader, side in ((old, "old"), (new, "new")):
            row[f"{side}_ok"] = _verdict(grader, text, gold) == truth
            row[f"{side}_flexible_ok"] = _verdict(grader, text, gold, flexible=True) == truth
        rows.append(row)
    columns = ("new_ok", "new_flexible_ok", "old_ok", "old_flexible_ok", "math_verify_ok")
    summary: dict[str, dict] = {}
    for row in rows:
        for key in (row["category"], "ALL"):
            s = summary.setdefault(key, {"n": 0, **dict.fromkeys(columns, 0)})
            s["n"] += 1
            for column in columns:
                s[column] += row[column]
    return rows, summary


def _run_all(grade: Callable, texts: list[str]) -> None:
    for text in texts:
        with contextlib.suppress(RecursionError):  # v1 on the looping case
            grade(text)


def cost(old: Grader, new: Grader, repeats: int = 5) -> dict:
    """Milliseconds per generation over the corpus (warm: math-verify imported, LaTeX values cached)."""
    from math_verify import parse

    texts = [c["generation"] for c in corpus()]
    graders = {f"{new.name} extract": lambda t: new.extract(t, "number"),
               f"{old.name} extract": lambda t: old.extract(t, "number"), "math-verify parse": parse}
    out = {}
    for name, grade in graders.items():
        _run_all(grade, texts)  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            _run_all(grade, texts)
        out[name] = 1000 * (time.perf_counter() - start) / (repeats * len(texts))
    return out


def print_corpus(summary: dict, old: Grader, new: Grader) -> None:
    """The corpus table: per category, how many verdicts of each grader match the truth."""
    print("\n## 1. Corpus: verdicts that match the truth")
    print(f"| {'category':<26} |   n | {new.name} strict | {new.name} flexible | {old.name} strict | "
          f"{old.name} flexible | math-verify |")
    print(f"|{'-' * 28}|-----|-----------|-------------|-----------|-------------|-------------|")
    for name, s in sorted(summary.items(), key=lambda kv: (kv[0] == "ALL", kv[0])):
        print(f"| {name:<26} | {s['n']:3} | {s['new_ok']:9} | {s['new_flexible_ok']:11} | {s['old_ok']:9} | "
              f"{s['old_flexible_ok']:11} | {s['math_verify_ok']:11} |")


_WHY = [  # reason tags, from the text around the answer statements: which family a change is about
    ("negation", re.compile(r"\b(?:not|never)\b|n['’]t\b", re.IGNORECASE)),
    ("justification after the answer", re.compile(r"answer\s+is\s+[^.\n]*?\b(?:since|because)\b", re.I)),
    ("expression answer", re.compile(r"answer\s*(?:is|:)\s*\(?[\d.,]+\s*[-+*/×x÷]\s*\d", re.IGNORECASE)),
    ("#### heading", re.compile(r"####\s*[A-Za-z\d]")),
    ("answer heading", re.compile(r"^[#* ]*(?:final\s+)?answer[* ]*$", re.IGNORECASE | re.MULTILINE)),
    ("fraction", re.compile(r"(?<![\d/])\d+/\d+(?![\d/])")),
    ("LaTeX", re.compile(r"\\[a-zA-Z]+")),
    ("scale word", re.compile(r"\d\s+(?:hundred|thousand|million|billion)\b", re.IGNORECASE)),
    ("sign or currency", re.compile(r"negative|minus|[–—]\d|Rs\.?|₹|€|£|cents", re.IGNORECASE)),
    ("digit groups", re.compile(r"\d,\d\d,\d{3}|\d \d{3}\b")),
    ("check or hypothesis", re.compile(r"check|verif|might think|tempting|but that is", re.IGNORECASE)),
    ("article or appositive", re.compile(r"answer\s+is\s+(?:the|a|an)\s|,\s+(?:the|which|who)\s", re.I)),
    ("number words", re.compile(r"answer\s*(?:is|:)\s*[a-z]+", re.IGNORECASE)),
]


def why(text: str) -> list[str]:
    """Reason tags for a change, from the rationale's last 300 characters (where the answer is stated)."""
    tail = text[-300:]
    return [name for name, pattern in _WHY if pattern.search(tail)] or ["other"]


def _stated(grader: Grader, text: str, gold: str, kind: str, options: list[str]) -> tuple[str | None, bool]:
    """A rationale's stated answer (strict, else flexible) and its verdict."""
    got = grader.extract(text, kind, options)
    answer = got.strict or got.flexible
    return answer, grader.check(answer, gold, kind)


def _rationales(path: Path) -> tuple[str, list[tuple[str, object, str]]] | None:
    """(study name, [(teacher, item, raw text)]) of a shipped config's imported teachers, or None."""
    from capgap.config.load import load_config
    from capgap.errors import CapgapError
    from capgap.study.data import prepare_task
    from capgap.tasks.choices import question_stem
    from capgap.teachers import ImportSource, normalize_question
    from capgap.teachers.imported import _aligned_pairs, _record_pairs

    config = load_config(path)
    try:
        st = prepare_task(config.tasks[0], 0, config.data_dir)
    except (CapgapError, OSError) as e:
        print(f"\n## 2. {config.name}: skipped ({e})")
        return None
    pool = {normalize_question(question_stem(it.question)): it for it in st.pool}
    found = []
    for teacher in (t for t in config.teachers if t.kind == "imported"):
        source = ImportSource(teacher.files, teacher.question_field, teacher.rationale_field, teacher.id_field,
                              teacher.questions_file, teacher.cut_at, teacher.strip_prefix)
        pairs = _aligned_pairs(source, Path(config.data_dir)) if source.questions_file else \
            _record_pairs(source, Path(config.data_dir))
        seen = set()
        for question, raw in pairs:
            item = pool.get(normalize_question(question_stem(question)))
            if item is None or item.id in seen:
                continue
            seen.add(item.id)
            text = raw.strip()
            if source.strip_prefix and text.startswith(source.strip_prefix):
                text = text[len(source.strip_prefix):].strip()
            found.append((f"{config.name[:14]}/{teacher.name}", item, text))
    return st.task.answer_type.value, found


def teacher_changes(old: Grader, new: Grader) -> dict:
    """Per imported teacher of the shipped CPU studies: rationales whose verdict differs between versions."""
    from capgap.tasks.choices import shown_options

    out: dict[str, list[dict]] = {}
    for path in CONFIGS:
        loaded = _rationales(path)
        if loaded is None:
            continue
        kind, found = loaded
        for teacher, item, text in found:
            options = shown_options(item.question) if kind == "choice" else []
            before, after = _stated(old, text, item.answer, kind, []), _stated(new, text, item.answer, kind, options)
            out.setdefault(teacher, []).append({
                "item": item.id, "gold": item.answer, "old": before[0], "new": after[0],
                "old_correct": before[1], "new_correct": after[1], "text": text})
    return out


def print_changes(title: str, changes: dict[str, list[dict]], old: Grader, new: Grader, examples: int = 3) -> dict:
    """Counts of verdict changes per source, and a few examples of each direction with reason tags."""
    print(f"\n## {title}")
    print(f"| source                         |    n | {old.name} correct | {new.name} correct | wrong→right | "
          "right→wrong | answer changed |")
    print("|--------------------------------|------|------------|------------|-------------|-------------|"
          "----------------|")
    summary = {}
    for name, rows in changes.items():
        up = [r for r in rows if r["new_correct"] and not r["old_correct"]]
        down = [r for r in rows if r["old_correct"] and not r["new_correct"]]
        moved = sum(r["old"] != r["new"] for r in rows)
        summary[name] = {"n": len(rows), "old_correct": sum(r["old_correct"] for r in rows),
                         "new_correct": sum(r["new_correct"] for r in rows), "wrong_to_right": len(up),
                         "right_to_wrong": len(down), "answer_changed": moved,
                         "examples": [{**r, "why": why(r["text"]), "text": r["text"][-240:]}
                                      for r in (up[:examples] + down[:examples])]}
        s = summary[name]
        print(f"| {name:<30} | {s['n']:4} | {s['old_correct']:10} | {s['new_correct']:10} | {len(up):11} | "
              f"{len(down):11} | {moved:14} |")
    for name, s in summary.items():
        for ex in s["examples"]:
            direction = "wrong→right" if ex["new_correct"] else "right→wrong"
            tail = " ".join(ex["text"][-160:].split())
            print(f"- {name} {ex['item']} {direction} (gold {ex['gold']}; {old.name} {ex['old']} → {new.name} "
                  f"{ex['new']}; {', '.join(ex['why'])}): …{tail}")
    return summary


def gsm8k_changes(old: Grader, new: Grader, store: Path) -> dict[str, list[dict]] | None:
    """Stored student generations re-scored by both versions, strict and flexible."""
    if not store.is_file():
        print(f"\n## 3. GSM8K student generations: skipped, no store at {store} (see the docstring)")
        return None
    with sqlite3.connect(store) as db:
        stored = db.execute("SELECT item_id, generation, gold FROM eval_items ORDER BY item_id").fetchall()
    out: dict[str, list[dict]] = {"strict": [], "flexible": []}
    for item_id, generation, gold in stored:
        answers = {g.name: g.extract(generation, "number") for g in (old, new)}
        for pipeline in out:
            before, after = (getattr(answers[g.name], pipeline) for g in (old, new))
            out[pipeline].append({"item": item_id, "gold": gold, "old": before, "new": after, "text": generation,
                                  "old_correct": old.check(before, gold, "number"),
                                  "new_correct": new.check(after, gold, "number")})
    return out


def main() -> None:
    """Run the three measurements, print their tables and write the JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", type=int, default=current.EXTRACTION_VERSION - 1,
                   help="the earlier extraction version to compare with (default: the one before the current)")
    p.add_argument("--gsm8k-store", type=Path, default=Path("/tmp/gsm8k-ext.sqlite"))
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "extraction_changes.json")
    args = p.parse_args()
    old, new = load_version(args.base), current_grader()
    start = time.perf_counter()
    rows, summary = score_corpus(old, new)
    print_corpus(summary, old, new)
    ms = cost(old, new)
    print("cost per generation (warm): " + ", ".join(f"{k} {v:.2f} ms" for k, v in ms.items()))
    result: dict = {"base": old.name, "current": new.name,
                    "corpus": {"summary": summary, "cases": rows, "ms_per_generation": ms}}
    teachers = teacher_changes(old, new)
    if teachers:
        result["teachers"] = print_changes(f"2. Real teacher rationales: {old.name} → {new.name} verdicts",
                                           teachers, old, new)
    gsm8k = gsm8k_changes(old, new, args.gsm8k_store)
    if gsm8k is not None:
        result["gsm8k_student"] = print_changes(
            f"3. GSM8K student generations (SmolLM2-135M): {old.name} → {new.name}", gsm8k, old, new)
    result["seconds"] = time.perf_counter() - start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    print(f"\n{time.perf_counter() - start:.1f} s; wrote {args.out}")


if __name__ == "__main__":
    main()
