"""locus_baselines: the paper's baselines from a cue-search dataset (teacher annotation, SFT and text-cue exports)."""
