"""pytest settings for the source tree (the test tree has its own conftest files under tests/).

The EasyR1 extension modules subclass EasyR1's classes, so importing them imports ``verl`` and, through it, vLLM:
doctest collection (``--doctest-modules``) would fail on every machine without a GPU stack. They hold no doctests;
tests/train/easyr1 imports them after installing the import stand-ins, and runs them.
"""

collect_ignore = [
    f"locus_train/easyr1/{name}.py" for name in ("batch", "engine", "rollout", "worker", "reward", "main")
]
