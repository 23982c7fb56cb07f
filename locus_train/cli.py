"""``locus-train``: training entry points beside the cluster launchers (EasyR1 runs go through ``examples/*.sh``).

``locus-train trl --config config/trl/<recipe>.yaml [key=value ...]`` trains with TRL's GRPOTrainer
(:mod:`locus_train.trl`); ``locus-train easyr1-step --config RECIPE ...`` runs GRPO steps of an EasyR1 recipe through
EasyR1's own code on a CPU (:mod:`locus_train.easyr1.step`). Each subcommand parses its own arguments and imports its
dependencies only when it runs.
"""

import importlib
import sys


COMMANDS = {
    "trl": "GRPO with TRL's GRPOTrainer: one GPU with LoRA, one node, or a CPU (locus_train.trl)",
    "easyr1-step": "GRPO steps of an EasyR1 recipe through EasyR1's own code, on a CPU (locus_train.easyr1.step)",
}
ENTRY_POINTS = {"trl": "locus_train.trl.train", "easyr1-step": "locus_train.easyr1.step"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        asked = argv[:1] in (["-h"], ["--help"])
        listing = "\n".join(f"  {name:<13}{help}" for name, help in COMMANDS.items())
        # help asked for goes to stdout with status 0; a missing or unknown command is a usage error
        usage = f"usage: locus-train COMMAND [args ...]\n\ncommands:\n{listing}"
        print(usage, file=sys.stdout if asked else sys.stderr)
        return 0 if asked else 2
    command = importlib.import_module(ENTRY_POINTS[argv[0]])
    return command.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
