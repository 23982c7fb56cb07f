"""LOCUS on TRL's ``GRPOTrainer``: the second trainer (one GPU with LoRA, one node with accelerate, or a CPU).

The same data, reward module, frames and prompt text as the EasyR1 recipes; only the trainer differs::

    locus-train trl --config config/trl/locus_qwen2_5_vl_3b_lora.yaml [key=value ...]
    accelerate launch -m locus_train.trl --config config/trl/locus_qwen2_5_vl_7b.yaml

Modules: :mod:`~locus_train.trl.config` (the YAML schema and loader, torch-free), :mod:`~locus_train.trl.data`
(parquet rows -> TRL conversational rows), :mod:`~locus_train.trl.rewards` (the LOCUS reward as a TRL reward
function, scored in the frame the processor shows the model), :mod:`~locus_train.trl.train` (checks, then the run).
Nothing here imports torch or trl at module level, so ``locus-train trl --help`` and config checks work anywhere.
"""
