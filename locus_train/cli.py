"""``locus-train``: training entry points that run without EasyR1 (EasyR1 runs go through ``examples/*.sh``).

``locus-train trl --config config/trl/<recipe>.yaml [key=value ...]`` trains with TRL's GRPOTrainer
(:mod:`locus_train.trl`); each subcommand parses its own arguments and imports its dependencies only when it runs.
"""

import sys


COMMANDS = {"trl": "GRPO with TRL's GRPOTrainer: one GPU with LoRA, one node, or a CPU (locus_train.trl)"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        asked = argv[:1] in (["-h"], ["--help"])
        listing = "\n".join(f"  {name:<6}{help}" for name, help in COMMANDS.items())
        # help asked for goes to stdout with status 0; a missing or unknown command is a usage error
        usage = f"usage: locus-train COMMAND [args ...]\n\ncommands:\n{listing}"
        print(usage, file=sys.stdout if asked else sys.stderr)
        return 0 if asked else 2
    from locus_train.trl.train import main as trl_main  # the only command so far

    return trl_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
