"""Instructor grading: rebuild each submission from the lab, run it boxed in, judge it in the grader.

- :mod:`~shipml.grading.submission` finds submissions, reads them defensively and rebuilds each from
  ``labs/<lab>*.ipynb`` keeping only the student's answer-cell sources;
- :mod:`~shipml.grading.sandbox` picks the sandbox (docker, bubblewrap, or an explicit unsafe ``none``)
  and builds its command line; :mod:`~shipml.grading.kit` stages the package *without* ``grading/`` for
  it and hashes the kit and ``labs/`` so a changed kit stops judging;
- :mod:`~shipml.grading.runner` runs :mod:`~shipml.grading.worker` (papermill, kernel ``shipml``) in that
  sandbox under a wall clock; :mod:`~shipml.grading.limits` sets memory/process limits in it;
- :mod:`~shipml.grading.verdicts` turns the worker's reports into statuses and points *in the grader's
  process* (answer keys from ``shipml.grading.keys`` on plain JSON answers decoded by
  :mod:`~shipml.grading.plain`), :mod:`~shipml.grading.hidden` adds the instructor's hidden checks;
  :mod:`~shipml.grading.results` holds the result types;
- :mod:`~shipml.grading.report` writes ``gradebook.csv``, feedback and full results.

``shipml grade LAB SUBMISSIONS --out DIR`` is the command line; :func:`grade` the function.
"""

from shipml.grading.hidden import HiddenCheck
from shipml.grading.results import QUESTION_STATUSES, SUBMISSION_STATUSES
from shipml.grading.run import GradeOptions, grade

__all__ = ["HiddenCheck", "QUESTION_STATUSES", "SUBMISSION_STATUSES", "GradeOptions", "grade"]
