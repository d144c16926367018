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
from extraction_corpus import corpus

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
