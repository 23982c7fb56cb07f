"""locus_train: everything about a training run (recipes, what EasyR1 does to a row, preflight, trainers)."""
