"""What each commit bought: ``auditor check`` at several revisions against the decode floor, in one run.

    python tests/bench/bench_steps.py CORPUS.pb REV [REV ...] [--repeat 4] [--instructions]

Each revision is exported with ``git archive`` to a temporary directory and run from there
(``PYTHONPATH`` set and the working directory outside the repository: ``python -m auditor``
run from the repository root would import the working tree, whatever ``PYTHONPATH`` says).
A ``.jsonl`` corpus is timed against the JSON-lines floor of ``bench_check.py``.

Default: wall and CPU (rusage of each child), floor then every revision, alternated
``--repeat`` times; the minimum of each is quoted, with the load average before and after.
On a shared, loaded machine those move by 10-20% from run to run, more than one step buys.
``--instructions`` counts instructions instead (valgrind's cachegrind, about 40x slower: use a
small corpus such as ``gen_synthetic.py 20000``), which other processes do not disturb.
Every revision's report must be the same as the first one's, ``run.seconds`` aside: checked.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FLOOR = ROOT.parent / "shared" / "bench" / "floor.py"


def _run(cmd: list[str], env: dict, instructions: bool) -> tuple[float, float]:
    """(wall s, cpu s), or (instructions, 0) under cachegrind."""
    if instructions:
        out = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null", *cmd],
                             env=env, cwd=tempfile.gettempdir(), capture_output=True, text=True)
        if out.returncode not in (0, 1):  # 1: findings over the gate
            raise SystemExit(f"{' '.join(cmd)}: exit status {out.returncode}")
        return float(re.search(r"I\s+refs:\s+([\d,]+)", out.stderr).group(1).replace(",", "")), 0.0
    t = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, cwd=tempfile.gettempdir(), stdout=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    if os.waitstatus_to_exitcode(status) not in (0, 1):  # 1: findings over the gate
        raise SystemExit(f"{' '.join(cmd)}: exit status {status}")
    return time.perf_counter() - t, ru.ru_utime + ru.ru_stime


def _report(path: Path) -> str:
    return re.sub(r'"seconds": [0-9.]+', '"seconds": 0', path.read_text(encoding="utf-8"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus")
    ap.add_argument("revs", nargs="+")
    ap.add_argument("--repeat", type=int, default=4)
    ap.add_argument("--instructions", action="store_true")
    a = ap.parse_args()
    corpus = str(Path(a.corpus).resolve())
    py = os.path.realpath(sys.executable)  # not a pyenv shim: valgrind follows no exec
    jsonl = corpus.endswith(".jsonl")
    floor = [py, str(ROOT / "tests" / "bench" / "bench_check.py"), "floor", corpus, "jsonl"] if jsonl else [py, str(FLOOR), corpus]
    repeat = 1 if a.instructions else a.repeat
    with tempfile.TemporaryDirectory(prefix="bench-steps-") as tmp:
        trees = {}
        for rev in a.revs:
            d = Path(tmp) / re.sub(r"[^\w.-]", "_", rev)
            d.mkdir()
            archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", str(d)], input=archive, check=True)
            trees[rev] = d
        print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} at start; {corpus}")
        got: dict[str, list[tuple[float, float]]] = {"floor": []}
        for _ in range(repeat):
            got["floor"].append(_run(floor, dict(os.environ, PYTHONPATH=str(ROOT)), a.instructions))
            for rev, d in trees.items():
                cmd = [py, "-m", "auditor", "check", corpus, "--format", "json", "-o", str(d / "out.json")]
                got.setdefault(rev, []).append(_run(cmd, dict(os.environ, PYTHONPATH=str(d)), a.instructions))
        print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} at the end")
        first = _report(trees[a.revs[0]] / "out.json")
        f0 = min(w for w, _ in got["floor"])
        fc = min(c for _, c in got["floor"])
        prev = None
        for name, runs in got.items():
            w, c = min(x for x, _ in runs), min(x for _, x in runs)
            same = "" if name == "floor" else ("  same report" if _report(trees[name] / "out.json") == first else "  REPORT DIFFERS")
            step = f"  step {100 * (w - prev) / prev:+.1f}%" if prev else ""
            if a.instructions:
                print(f"{name:12s} {w / 1e9:7.3f} G instructions  ratio {f0 / w:.4f}x{step}{same}")
            else:
                print(f"{name:12s} wall {w:6.2f}s cpu {c:6.2f}s  ratio {f0 / w:.3f}x ({fc / c:.3f}x cpu){step}{same}")
            prev = None if name == "floor" else w


if __name__ == "__main__":
    main()
