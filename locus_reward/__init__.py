"""locus_reward: the rewards EasyR1 loads -- cue search and the LFPC agent stages -- (pure Python; imports nothing else
of LOCUS)."""
