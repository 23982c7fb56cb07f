"""EasyR1 (b44b311) extended for multi-turn crop-tool rollouts (LFPC), and CPU GRPO steps through its own code.

Most modules here subclass EasyR1 classes and import ``verl`` at module level, so they are imported only where
EasyR1 is installed (and, on a CPU machine, after :mod:`.standins` stood in for vLLM). Two never import it:
:mod:`.config` (the recipe's ``lfpc:`` section, read by preflight) and :mod:`.standins`. See docs/lfpc.md.
"""
