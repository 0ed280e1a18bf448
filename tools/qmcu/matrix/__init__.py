"""Stage 7, the matrix: every board x corner x mode cell, exact budgets, the summary, the benchmark."""
