"""EasyR1 (b44b311) extended for multi-turn crop-tool rollouts (LFPC), and CPU GRPO steps through its own code.

Most modules here subclass EasyR1 classes and import ``verl`` at module level, so they are imported only where
EasyR1 is installed (and, on a CPU machine, after :mod:`.standins` stood in for vLLM). Three never import it at
module level: :mod:`.config` (the recipe's ``lfpc:`` section, read by preflight), :mod:`.standins` and :mod:`.step`
(``locus-train easyr1-step``, which installs the stand-ins first). See docs/lfpc_rollout.md.
"""
