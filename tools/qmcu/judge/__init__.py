"""Stage 6, judging: every verdict rule (verdict.py), a cell run end to end (run_and_judge.py), the reports."""
