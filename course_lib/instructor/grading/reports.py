"""What grading writes for people: feedback per submission, the gradebook, the LMS export, the answers.

- ``feedback/<id>.md`` (:func:`feedback_markdown`): the total, a table of points per exercise, why an
  exercise got zero whatever its tests said (markers removed, module not parsing...), notes, then every
  graded test passed or failed with the failure's message, and the tests that carry no points.
- ``grades.csv``: a row per submission: ``submission``, ``status`` (``graded``, ``rejected`` or ``error``),
  the points of each exercise, ``total`` and ``reason`` (why it was rejected or failed).
- ``lms.csv``: ``SID``, ``Score``, ``Max Score``: the submission id (name the zips by student id or
  e-mail) and its total, the columns a learning-management system or Gradescope's score upload matches
  on and reads.
- ``answers/NN_<question>.md``: one file per written question: the question, the model answer, then every
  submission's answer, for reading side by side.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from course_lib.core.io import atomic_write_text


def _fenced(text: str) -> list[str]:
    """``text`` as a markdown code block whose fence is longer than any run of backticks in it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence, text.rstrip(), fence]


def feedback_markdown(record: dict, tests: tuple[tuple[str, str | None], ...]) -> str:
    """The feedback file of one graded or rejected submission."""
    lines = [f"# Assignment {record['assignment']}: {record['submission']}", "",
             f"**{record['total']:g} / {record['max_total']:g} points**", ""]
    if record["status"] == "rejected":
        return "\n".join(lines + [f"The submission was not graded: {record['reason']}.", ""])
    lines += ["| Exercise | Points | Tests passed |", "|---|---|---|"]
    lines += [f"| `{name}` | {e['points']:g} / {e['max']:g} | {e['passed']} of {e['tests']} |"
              for name, e in record["exercises"].items()]
    problems = [f"- `{name}` gets zero: {e['problem']}" for name, e in record["exercises"].items()
                if e["problem"]]
    notes = problems + [f"- {note}" for note in record["notes"]]
    lines += ["", "## Notes", "", *notes] if notes else []
    lines += ["", "## Tests"]
    groups = [(f"`{name}`", [n for n, e in tests if e == name]) for name in record["exercises"]]
    groups.append(("Tests without points", [n for n, e in tests if e is None]))
    for title, nodeids in groups:
        if not nodeids:
            continue
        lines += ["", f"### {title}", ""]
        for nodeid in nodeids:
            result = record["tests"].get(nodeid, {"outcome": "failed", "message": "not run"})
            if result["outcome"] == "passed":
                lines.append(f"- passed: `{nodeid}`")
            else:
                message = result.get("message") or "(no message)"
                lines += [f"- **failed**: `{nodeid}`", "", *_fenced(message), ""]
    return "\n".join(lines).rstrip() + "\n"


def _cell(value) -> str:
    """A CSV cell that a spreadsheet will not read as a formula."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def _csv(rows: list[list]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([[_cell(v) for v in row] for row in rows])
    return buffer.getvalue()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "question"


def write_reports(out: Path, records: list[dict], batch) -> None:
    """``grades.csv``, ``lms.csv`` and ``answers/*.md`` from every submission's record."""
    records = sorted(records, key=lambda r: r["submission"])
    names = list(batch.points)
    rows = [["submission", "status", *names, "total", "reason"]]
    for r in records:
        points = [r["exercises"][n]["points"] if n in r.get("exercises", {}) else "" for n in names]
        rows.append([r["submission"], r["status"], *points, r["total"], r.get("reason", "")])
    atomic_write_text(out / "grades.csv", _csv(rows))
    atomic_write_text(out / "lms.csv", _csv([["SID", "Score", "Max Score"]] + [
        [r["submission"], r["total"], r["max_total"]] for r in records]))
    for k, q in enumerate(batch.questions, start=1):
        lines = [f"# {q.title}", "", q.text, "", "## Model answer", "", q.model, "", "## Answers"]
        for r in records:
            answer = r.get("answers", {}).get(q.id)
            lines += ["", f"### {r['submission']}", "", answer.strip() if answer else "_(no answer)_"]
        atomic_write_text(out / "answers" / f"{k:02d}_{_slug(q.title)}.md", "\n".join(lines) + "\n")
