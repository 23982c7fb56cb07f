"""LOCUS: local visual cue search, a GRPO training plugin for EasyR1."""

from setuptools import find_packages, setup


# the pipeline, upstream first: each package may import only those before it (tests/test_layout.py checks it)
PACKAGES = ["locus_reward", "locus_data", "locus_agent", "locus_train", "locus_baselines", "locus_eval"]
CORE = [
    "numpy",
    "pillow",
    "pyarrow>=15.0.0",
    "pycocotools",
    "omegaconf>=2.3,<2.4",  # EasyR1 b44b311 breaks under 2.4 (see constraints.txt)
    "pyyaml",
    "jinja2",
    "tqdm",
]
EVAL = ["matplotlib", "transformers>=4.57.1,<5"]  # torch comes from the user's environment (EasyR1's image has it)
BASELINES = ["openai==3.57.0"]  # `locus-data annotate`'s teacher client (pinned: its error types are the contract)
# `locus-train trl`: TRL's GRPOTrainer (pinned: its reward-function kwargs and log_metric are the contract)
TRL = ["trl==1.16.0", "peft==0.21.2", "accelerate==1.15.0", "datasets", *EVAL]
TEST = ["pytest", "hypothesis", "ruff", "datasets", "torch", *EVAL, *BASELINES, *TRL]

setup(
    name="locus",
    version="0.1.0.dev0",
    description="LOCUS: teach VLMs fine-grained perception with a verifiable visual-cue search task (EasyR1 plugin)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=[f"{name}*" for name in PACKAGES]),
    # files the code reads at run time, so a non-editable install works from any directory
    package_data={
        "locus_agent": ["prompts/*.txt"],
        "locus_train": [
            "prompts/*.jinja",
            "prompts/README.md",
            "easyr1_schema/schema.json",
            "easyr1_schema/README.md",
        ],
        "locus_baselines": ["prompts/*.txt"],
        "locus_eval": ["run_lmms_eval.sh"],
    },
    install_requires=CORE,
    extras_require={
        "eval": EVAL,
        "vllm": ["vllm"],
        "lmms-eval": ["lmms-eval==0.7.3"],
        "baselines": BASELINES,
        "trl": TRL,
        "test": TEST,
    },
    entry_points={
        "console_scripts": [
            "locus-data=locus_data.cli:main",
            "locus-eval=locus_eval.cli:main",
            "locus-train=locus_train.cli:main",
        ],
        # locus-data subcommands that live in the packages above locus_data (see locus_data/cli.py)
        "locus_data.commands": [
            "measure-prompts=locus_train.prompt_lengths:main",
            "select-resolution=locus_train.select_resolution:main",
            "annotate=locus_baselines.annotate:main",
            "export-sft=locus_baselines.export_sft:main",
            "export-text-cue=locus_baselines.export_text_cue:main",
        ],
    },
)
