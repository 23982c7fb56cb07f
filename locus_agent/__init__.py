"""Running a Qwen-VL model as a crop-tool agent, engine-independent (torch-free at import time).

Between the data tooling and the trainers: ``locus_agent`` may import ``locus_reward`` and ``locus_data``, and
``locus_train``, ``locus_baselines`` and ``locus_eval`` import it (the layout test checks the order).
"""
