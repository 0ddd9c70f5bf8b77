"""Instructor grading: rebuild each submission from the lab, run it boxed in, judge it in the grader.

- :mod:`~shipml.grading.submission` finds submissions, reads them defensively and rebuilds each from
  ``labs/<lab>*.ipynb`` keeping only the student's answer-cell sources;
- :mod:`~shipml.grading.sandbox` runs :mod:`~shipml.grading.worker` (papermill, kernel ``shipml``) in a
  child process or a ``--network none`` container, with a wall clock that kills the process groups;
- :mod:`~shipml.grading.limits` sets memory/process limits in the child;
- :mod:`~shipml.grading.verdicts` turns the worker's reports into statuses and points *in the grader's
  process* (``checks.evaluate_answer`` on plain JSON answers), :mod:`~shipml.grading.hidden` adds the
  instructor's hidden checks;
- :mod:`~shipml.grading.report` writes ``gradebook.csv``, feedback and full results.

``shipml grade LAB SUBMISSIONS --out DIR`` is the command line; :func:`grade` the function.
"""

from shipml.grading.hidden import HiddenCheck
from shipml.grading.run import Settings, grade
from shipml.grading.verdicts import QUESTION_STATUSES, SUBMISSION_STATUSES

__all__ = ["HiddenCheck", "QUESTION_STATUSES", "SUBMISSION_STATUSES", "Settings", "grade"]
