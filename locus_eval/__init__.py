"""locus_eval: evaluation of trained checkpoints (proxy task, benchmarks, attention, training curves)."""
