"""Hidden checks for lab00 used by the corpus test: they run in the grader, never in a student's kernel."""

from shipml.grading.hidden import HiddenCheck


def proba_spread(answers, ctx):
    p = answers["proba"]
    return bool(p.std() > 0), f"SECRET-HIDDEN: std of the probabilities is {p.std():.4f}"


def refusal_names_the_file(answers, ctx):
    """One refusal message names the changed model file."""
    refused = [c["message"] for c in answers["refusal"]["cases"] if c["outcome"] == "refused"]
    return any("model.joblib" in m for m in refused), "SECRET-HIDDEN: a refusal must name model.joblib"


HIDDEN = [HiddenCheck("proba_spread", 1, proba_spread, "fraud probabilities vary"), refusal_names_the_file]
