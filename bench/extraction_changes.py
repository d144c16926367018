"""Answer extraction version 2 against version 1 and against math-verify alone.

    python bench/extraction_changes.py [--gsm8k-store /tmp/gsm8k-ext.sqlite]

1. A corpus of realistic generations with known golds, built below (the formats of the extraction audit
   plus ordinary "The answer is N." rationales): how often each grader's verdict matches the truth.
   Every case states either the gold or a different value, so the truth is known by construction.
   math-verify alone is `verify(parse(gold), parse(generation))` with its defaults.
2. The real SVAMP teacher rationales of examples/svamp-six-teachers-cpu.yaml (../shared/data), joined to
   the pool's gold answers: how many rationales change verdict between version 1 (read from git history)
   and version 2, per teacher, with examples and a reason tag.
3. Stored GSM8K generations of the real student (a `capgap eval ... --store` sqlite file; skipped when
   absent), produced by
   capgap eval --model smollm2-135m-instruct --task gsm8k --data ../shared/data/gsm8k/test.jsonl \
       --limit 60 --max-new-tokens 192 --store /tmp/gsm8k-ext.sqlite
Parts 2 and 3 are skipped with a message when ../shared/data is absent. Prints tables, writes JSON
(default bench/results/extraction_changes.json).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

from capgap.tasks import extraction as v2

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "svamp-six-teachers-cpu.yaml"
N = v2.AnswerType.NUMBER


def load_v1() -> ModuleType:
    """Extraction version 1: the newest committed extraction.py whose EXTRACTION_VERSION is 1."""
    path = "src/capgap/tasks/extraction.py"
    commits = subprocess.run(["git", "log", "--format=%H", "--", path], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()
    for commit in commits:
        text = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout
        if re.search(r"^EXTRACTION_VERSION = 1\b", text, re.MULTILINE):
            file = Path(tempfile.mkdtemp()) / "extraction_v1.py"
            file.write_text(text)
            spec = importlib.util.spec_from_file_location("capgap_extraction_v1", file)
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module  # dataclasses look their module up by name
            spec.loader.exec_module(module)
            return module
    raise SystemExit("no committed extraction.py with EXTRACTION_VERSION = 1 in git history")


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


def _v1_strict(v1: ModuleType, text: str, gold: str) -> bool | None:
    kind = v1.AnswerType.NUMBER  # v1's own enum: v1 compares answer types by identity
    try:
        return v1.is_correct(v1.extract(text, kind).strict, v1.canonical_gold(gold, kind), kind)
    except RecursionError:
        return None  # version 1 aborts the evaluation here


def _math_verify(text: str, gold: str) -> bool:
    from math_verify import parse, verify
    return bool(verify(parse(gold), parse(text)))


def score_corpus(v1: ModuleType) -> tuple[list[dict], dict]:
    """Each case graded by v2 (strict, flexible), v1 (strict) and math-verify; per-category agreement."""
    rows = []
    for case in corpus():
        got = v2.extract(case["generation"], N)
        gold = v2.canonical_gold(case["gold"], N)
        row = {**case, "v2_strict": got.strict, "v2_flexible": got.flexible,
               "v2_ok": v2.is_correct(got.strict, gold, N) == case["truth"],
               "v2_flexible_ok": v2.is_correct(got.flexible, gold, N) == case["truth"]}
        v1_verdict = _v1_strict(v1, case["generation"], case["gold"])
        row["v1_ok"] = v1_verdict == case["truth"]
        row["v1_raised"] = v1_verdict is None
        row["math_verify_ok"] = _math_verify(case["generation"], case["gold"]) == case["truth"]
        rows.append(row)
    summary: dict[str, dict] = {}
    for row in rows:
        for key in (row["category"], "ALL"):
            s = summary.setdefault(key, {"n": 0, "v2": 0, "v2_flexible": 0, "v1": 0, "math_verify": 0})
            s["n"] += 1
            s["v2"] += row["v2_ok"]
            s["v2_flexible"] += row["v2_flexible_ok"]
            s["v1"] += row["v1_ok"]
            s["math_verify"] += row["math_verify_ok"]
    return rows, summary


def _run_all(grade, texts: list[str]) -> None:
    for text in texts:
        with contextlib.suppress(RecursionError):  # v1 on the looping case
            grade(text)


def cost(v1: ModuleType, repeats: int = 5) -> dict:
    """Milliseconds per generation over the corpus (warm: math-verify imported, LaTeX values cached)."""
    from math_verify import parse

    texts = [c["generation"] for c in corpus()]
    graders = {"v2 extract": lambda t: v2.extract(t, N), "v1 extract": lambda t: v1.extract(t, v1.AnswerType.NUMBER),
               "math-verify parse": parse}
    out = {}
    for name, grade in graders.items():
        _run_all(grade, texts)  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            _run_all(grade, texts)
        out[name] = 1000 * (time.perf_counter() - start) / (repeats * len(texts))
    return out


def print_corpus(summary: dict) -> None:
    """The corpus table: per category, how many verdicts of each grader match the truth."""
    print("\n## 1. Corpus: verdicts that match the truth (strict unless named)")
    print(f"| {'category':<26} |   n | v2 strict | v2 flexible | v1 strict | math-verify |")
    print(f"|{'-' * 28}|-----|-----------|-------------|-----------|-------------|")
    for name, s in sorted(summary.items(), key=lambda kv: (kv[0] == "ALL", kv[0])):
        print(f"| {name:<26} | {s['n']:3} | {s['v2']:9} | {s['v2_flexible']:11} | {s['v1']:9} | "
              f"{s['math_verify']:11} |")


_WHY = [  # reason tags, from the text around the answer statements: which audit finding a change is about
    ("negation", re.compile(r"\b(?:not|never)\b|n['’]t\b", re.IGNORECASE)),
    ("justification after the answer", re.compile(r"answer\s+is\s+[^.\n]*?\b(?:since|because)\b", re.I)),
    ("expression answer", re.compile(r"answer\s*(?:is|:)\s*\(?[\d.,]+\s*[-+*/×x÷]\s*\d", re.IGNORECASE)),
    ("#### heading", re.compile(r"####\s*[A-Za-z]")),
    ("fraction", re.compile(r"(?<![\d/])\d+/\d+(?![\d/])")),
    ("LaTeX", re.compile(r"\\[a-zA-Z]+")),
    ("unicode minus", re.compile("\u2212")),
    ("number words", re.compile(r"answer\s*(?:is|:)\s*[a-z]+", re.IGNORECASE)),
]


def why(text: str) -> list[str]:
    """Reason tags for a change, from the rationale's last 300 characters (where the answer is stated)."""
    tail = text[-300:]
    return [name for name, pattern in _WHY if pattern.search(tail)] or ["other"]


def verdicts(module: ModuleType, text: str, gold: str) -> tuple[str | None, bool]:
    """A teacher rationale's stated answer (strict, else flexible, as teachers are checked) and verdict."""
    kind = module.AnswerType.NUMBER
    got = module.extract(text, kind)
    answer = got.strict or got.flexible
    return answer, module.is_correct(answer, module.canonical_gold(gold, kind), kind)


def teacher_changes(v1: ModuleType) -> dict | None:
    """Per imported teacher of the CPU SVAMP study: rationales whose verdict differs between v1 and v2."""
    from capgap.config.load import load_config
    from capgap.study.data import prepare_task
    from capgap.teachers import ImportSource, normalize_question, normalize_rationale
    from capgap.teachers.imported import _aligned_pairs, _record_pairs

    config = load_config(CONFIG)
    data_dir = Path(config.data_dir)
    if not (data_dir / "svamp" / "SVAMP.json").is_file():
        print(f"\n## 2. SVAMP teachers: skipped, {data_dir} has no svamp/SVAMP.json")
        return None
    st = prepare_task(config.tasks[0], 0, config.data_dir)
    pool = {normalize_question(it.question): it for it in st.pool}
    out = {}
    for teacher in (t for t in config.teachers if t.kind == "imported"):
        source = ImportSource(teacher.files, teacher.question_field, teacher.rationale_field, teacher.id_field,
                              teacher.questions_file, teacher.cut_at, teacher.strip_prefix)
        pairs = (_aligned_pairs(source, data_dir) if source.questions_file else _record_pairs(source, data_dir))
        seen, rows = set(), []
        for question, raw in pairs:
            item = pool.get(normalize_question(question))
            if item is None or item.id in seen:
                continue
            seen.add(item.id)
            text = raw.strip()
            if source.strip_prefix and text.startswith(source.strip_prefix):
                text = text[len(source.strip_prefix):].strip()
            # v1 checked a teacher by strict-else-flexible; v2 by the answer its normalised training text states
            answer = normalize_rationale(text, st.task)[1]
            old, new = verdicts(v1, text, item.answer), (answer, st.task.check(answer, item.answer))
            rows.append({"item": item.id, "gold": item.answer, "old": old[0], "new": new[0],
                         "old_correct": old[1], "new_correct": new[1], "text": text})
        out[teacher.name] = rows
    return out


def print_changes(title: str, changes: dict[str, list[dict]], examples: int = 3) -> dict:
    """Counts of verdict changes per source, and a few examples of each direction with reason tags."""
    print(f"\n## {title}")
    print("| source               |   n | v1 correct | v2 correct | wrong→right | right→wrong | answer changed |")
    print("|----------------------|-----|------------|------------|-------------|-------------|----------------|")
    summary = {}
    for name, rows in changes.items():
        up = [r for r in rows if r["new_correct"] and not r["old_correct"]]
        down = [r for r in rows if r["old_correct"] and not r["new_correct"]]
        moved = sum(r["old"] != r["new"] for r in rows)
        summary[name] = {"n": len(rows), "v1_correct": sum(r["old_correct"] for r in rows),
                         "v2_correct": sum(r["new_correct"] for r in rows), "wrong_to_right": len(up),
                         "right_to_wrong": len(down), "answer_changed": moved,
                         "examples": [{**r, "why": why(r["text"]), "text": r["text"][-240:]}
                                      for r in (up[:examples] + down[:examples])]}
        s = summary[name]
        print(f"| {name:<20} | {s['n']:3} | {s['v1_correct']:10} | {s['v2_correct']:10} | {len(up):11} | "
              f"{len(down):11} | {moved:14} |")
    for name, s in summary.items():
        for ex in s["examples"]:
            direction = "wrong→right" if ex["new_correct"] else "right→wrong"
            tail = " ".join(ex["text"][-160:].split())
            print(f"- {name} {ex['item']} {direction} (gold {ex['gold']}; v1 {ex['old']} → v2 {ex['new']}; "
                  f"{', '.join(ex['why'])}): …{tail}")
    return summary


def gsm8k_changes(v1: ModuleType, store: Path) -> dict[str, list[dict]] | None:
    """Stored student generations re-scored by v1 and v2, strict and flexible."""
    if not store.is_file():
        print(f"\n## 3. GSM8K student generations: skipped, no store at {store} (see the docstring)")
        return None
    with sqlite3.connect(store) as db:
        stored = db.execute("SELECT item_id, generation, gold FROM eval_items ORDER BY item_id").fetchall()
    out: dict[str, list[dict]] = {"strict": [], "flexible": []}
    for item_id, generation, gold in stored:
        answers = {m: m.extract(generation, m.AnswerType.NUMBER) for m in (v1, v2)}
        for pipeline in out:
            old, new = (getattr(answers[m], pipeline) for m in (v1, v2))
            out[pipeline].append({
                "item": item_id, "gold": gold, "old": old, "new": new, "text": generation,
                "old_correct": v1.is_correct(old, gold, v1.AnswerType.NUMBER),
                "new_correct": v2.is_correct(new, gold, N)})
    return out


def main() -> None:
    """Run the three measurements, print their tables and write the JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gsm8k-store", type=Path, default=Path("/tmp/gsm8k-ext.sqlite"))
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "extraction_changes.json")
    args = p.parse_args()
    v1 = load_v1()
    start = time.perf_counter()
    rows, summary = score_corpus(v1)
    print_corpus(summary)
    ms = cost(v1)
    print("cost per generation (warm): " + ", ".join(f"{k} {v:.2f} ms" for k, v in ms.items()))
    result: dict = {"corpus": {"summary": summary, "cases": rows, "ms_per_generation": ms}}
    teachers = teacher_changes(v1)
    if teachers is not None:
        result["svamp_teachers"] = print_changes("2. SVAMP teacher rationales: v1 → v2 verdicts", teachers)
    gsm8k = gsm8k_changes(v1, args.gsm8k_store)
    if gsm8k is not None:
        result["gsm8k_student"] = print_changes("3. GSM8K student generations (SmolLM2-135M): v1 → v2", gsm8k)
    result["seconds"] = time.perf_counter() - start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    print(f"\n{time.perf_counter() - start:.1f} s; wrote {args.out}")


if __name__ == "__main__":
    main()
