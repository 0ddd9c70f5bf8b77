"""Grader-only answer keys: the expected answers of each lab (never importable in a graded student's kernel)."""
