"""Compare the simulator's records with Nova's and Cinder's, mechanically.

    python -m tests.conformance.compare OUT_DIR

``OUT_DIR`` holds ``nova.json`` and ``cinder.json`` (written by
``real_nova.py``/``real_cinder.py``) and ``sim/<behaviour>.json`` (written by
``test_sim.py``).  Every record is flattened to dotted paths (lists are
compared whole, so a history is one value); a path whose values differ is a
difference, and it passes only when an entry of ``allowed_differences.yaml``
matches it: same behaviour (or ``"*"``), the path (``fnmatch`` pattern) and,
when given, the exact ``real`` and ``sim`` values, or (``ignore_states``)
histories that are equal once the listed transient states are dropped.  A forbidden transition or
a failed behaviour on either side fails too.  Behaviours listed in
``pending.SIM_PENDING`` are reported PENDING and not compared; behaviours a
real environment cannot run are reported as its known limits.

Exit status: 0 when nothing unexplained remains, 1 otherwise.
"""

from __future__ import annotations

import fnmatch
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.conformance import suite
from tests.conformance.pending import SIM_PENDING

HERE = Path(__file__).parent
IGNORED = {"violations", "outcome"}


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if k == "_traceback":
                continue
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def load_allowed(path: Path = HERE / "allowed_differences.yaml") -> list[dict[str, Any]]:
    entries = yaml.safe_load(path.read_text()) or []
    for i, e in enumerate(entries):
        missing = {"behaviour", "path", "reason"} - set(e)
        if missing:
            raise ValueError(f"{path}: entry {i} lacks {sorted(missing)}")
    return list(entries)


def _without(history: list[Any], drop: set[str]) -> list[Any]:
    """``history`` without the dropped states.

    A plain name (``deleting``) is dropped wherever it appears; ``S@A>B`` drops
    state ``S`` only where it sits between ``A`` and ``B`` (a transient step a
    poll may or may not see, and nowhere else).
    """
    plain = {d for d in drop if "@" not in d}
    ctx = {tuple([d.split("@")[0], *d.split("@")[1].split(">")]) for d in drop if "@" in d}
    out = []
    for i, x in enumerate(history):
        prev = history[i - 1] if i > 0 else None
        nxt = history[i + 1] if i + 1 < len(history) else None
        if x in plain or (x, prev, nxt) in ctx:
            continue
        out.append(x)
    return out


def _same_without(real: Any, sim: Any, drop: set[str]) -> bool:
    if not (isinstance(real, list) and isinstance(sim, list)):
        return False
    return _without(real, drop) == _without(sim, drop)


def explain(
    behaviour: str, path: str, real: Any, sim: Any, allowed: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The entries that explain one difference (empty: unexplained).

    One entry explains it alone; otherwise the ``ignore_states`` entries that
    match the path may together (each names its own transient state).
    """
    matching = [
        e
        for e in allowed
        if e["behaviour"] in ("*", behaviour) and fnmatch.fnmatchcase(path, e["path"])
    ]
    for e in matching:
        if "real" in e and e["real"] != real:
            continue
        if "sim" in e and e["sim"] != sim:
            continue
        if "ignore_states" in e and not _same_without(real, sim, set(e["ignore_states"])):
            continue
        return [e]
    states = [e for e in matching if "ignore_states" in e and not {"real", "sim"} & set(e)]
    drop = {x for e in states for x in e["ignore_states"]}
    if len(states) > 1 and _same_without(real, sim, drop):
        return states
    return []


def compare(out: Path) -> tuple[int, list[str]]:
    real: dict[str, Any] = {}
    unsupported: dict[str, str] = {}
    lines: list[str] = []
    failures = 0
    for side in ("nova", "cinder"):
        f = out / f"{side}.json"
        if not f.exists():
            lines.append(f"FAIL    {side}.json missing: the real-service side did not finish")
            failures += 1
            continue
        doc = json.loads(f.read_text())
        real.update(doc["behaviours"])
        unsupported.update(doc.get("unsupported", {}))
        for err in doc.get("harness_errors", []):
            lines.append(f"FAIL    {side} harness: {err.splitlines()[0]}")
            failures += 1
    allowed = load_allowed()
    used: set[int] = set()
    compared: list[str] = []
    pending: list[str] = []
    limits: list[str] = []
    for name in suite.names():
        sim_file = out / "sim" / f"{name}.json"
        sim = json.loads(sim_file.read_text()) if sim_file.exists() else None
        if name in unsupported:
            lines.append(f"LIMIT   {name}: real side cannot run it: {unsupported[name]}")
            limits.append(name)
            continue
        rec = real.get(name)
        if rec is None:
            lines.append(f"FAIL    {name}: no real-service record")
            failures += 1
            continue
        problems = [f"real: {v}" for v in rec["violations"]]
        if rec["outcome"] != "ok":
            problems.append(f"real: {rec['outcome']}")
        if name in SIM_PENDING:
            pending.append(name)
            state = "PENDING"
            if sim and sim["outcome"] == "ok" and not sim["violations"]:
                state = "PENDING (now passes on the simulator: remove it from SIM_PENDING)"
            if problems:
                failures += 1
                lines.append(f"FAIL    {name}: " + "; ".join(problems))
            else:
                lines.append(f"{state:7} {name}: {SIM_PENDING[name]}")
            continue
        if sim is None:
            lines.append(f"FAIL    {name}: no simulator record")
            failures += 1
            continue
        compared.append(name)
        problems += [f"sim: {v}" for v in sim["violations"]]
        if sim["outcome"] != "ok":
            problems.append(f"sim: {sim['outcome']}")
        fr = flatten({k: v for k, v in rec.items() if k not in IGNORED})
        fs = flatten({k: v for k, v in sim.items() if k not in IGNORED})
        explained: list[str] = []
        for path in sorted(set(fr) | set(fs)):
            a, b = fr.get(path, "<absent>"), fs.get(path, "<absent>")
            if a == b:
                continue
            entries = explain(name, path, a, b, allowed)
            if not entries:
                problems.append(f"{path}: real {json.dumps(a)} != sim {json.dumps(b)}")
            else:
                used.update(id(e) for e in entries)
                tag = ", ".join(str(e.get("id", e["path"])) for e in entries)
                explained.append(f"[{tag}] {path}: real {json.dumps(a)} / sim {json.dumps(b)}")
        if problems:
            failures += 1
            lines.append(f"FAIL    {name}")
            lines += [f"          {p}" for p in problems]
        else:
            lines.append(
                f"ok      {name}"
                + (f" ({len(explained)} allowed differences)" if explained else "")
            )
        lines += [f"          allowed: {x}" for x in explained]
    for e in allowed:
        if id(e) not in used and e["behaviour"] not in SIM_PENDING:
            lines.append(f"note    allowed difference not seen: {e['behaviour']} {e['path']}")
    lines.append(f"compared on both sides ({len(compared)}): {', '.join(compared) or '-'}")
    if pending:
        lines.append(f"pending on the simulator ({len(pending)}): {', '.join(pending)}")
    if limits:
        lines.append(f"limits of the real side ({len(limits)}): {', '.join(limits)}")
    return failures, lines


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    failures, lines = compare(Path(args[0]))
    print("\n".join(lines))
    print(
        f"conformance: {failures} unexplained difference(s)"
        if failures
        else "conformance: no unexplained differences"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
