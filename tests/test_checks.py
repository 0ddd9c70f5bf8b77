"""Checks: plain data only, friendly verdicts, never a traceback."""

import numpy as np
import pytest
from shipml import checks
from shipml.checks import Context, Question, collect_answer, evaluate_answer, roundtrip, to_plain


class AlwaysEqual:
    def __eq__(self, other):
        return True


Q = Question("q", 2, lambda a, ctx: a, lambda a, ctx: (a == 42, "the answer"), "think of 42")
CTX = Context("labX", 0)


def test_plain_data_round_trips():
    value = {"a": [1, 2.5, "x", None, True], "arr": np.arange(6, dtype=np.int32).reshape(2, 3),
             "f": np.float32(1.5), "nan": float("nan")}
    back = roundtrip(value)
    assert back["a"] == [1, 2.5, "x", None, True]
    assert back["arr"].dtype == np.int32 and back["arr"].shape == (2, 3)
    assert back["f"] == 1.5 and np.isnan(back["nan"])


@pytest.mark.parametrize("bad", [AlwaysEqual(), {1: 2}, np.array(["a"], dtype=object), object()])
def test_non_plain_values_are_refused(bad):
    with pytest.raises(TypeError):
        to_plain(bad)


def test_always_equal_object_earns_nothing():
    plain = collect_answer(Q, AlwaysEqual(), CTX)
    v = evaluate_answer(Q, plain, CTX)
    assert v.status == "error" and v.points == 0 and "not plain data" in v.message


def test_pass_fail_unanswered():
    assert evaluate_answer(Q, collect_answer(Q, 42, CTX), CTX).points == 2
    fail = evaluate_answer(Q, collect_answer(Q, 41, CTX), CTX)
    assert fail.status == "fail" and fail.hint == "think of 42"
    assert evaluate_answer(Q, collect_answer(Q, None, CTX), CTX).message == "not answered yet"


def test_student_exception_becomes_a_message():
    def boom(answer, ctx):
        return answer()

    q = Question("q", 1, boom, lambda a, ctx: (True, ""))
    v = evaluate_answer(q, collect_answer(q, lambda: 1 / 0, CTX), CTX)
    assert v.status == "error" and "ZeroDivisionError" in v.message


def test_check_prints_and_never_raises(capsys, tmp_path):
    checks._session = None
    checks.check("anything", 1)
    assert "run the setup cell" in capsys.readouterr().out
    checks.start("lab00", seed=0, answers_path=tmp_path / "a.jsonl")
    checks.check("no-such-question", 1)
    assert "checker itself failed" in capsys.readouterr().out
    checks.check("refusal", "nope")
    out = capsys.readouterr().out
    assert out.startswith("❌ refusal (0/1)") and "hint:" in out
    assert checks.load_answers(tmp_path / "a.jsonl") == {"refusal": "nope"}


def test_grade_answers_marks_missing_questions():
    verdicts = checks.grade_answers("lab00", {"refusal": "x does not match its sha256"})
    by_id = {v.question: v for v in verdicts}
    assert by_id["refusal"].status == "pass"
    assert by_id["data"].message == "not answered yet"
