"""locus_reward: the cue-search reward EasyR1 loads (pure Python; imports nothing else of LOCUS)."""
