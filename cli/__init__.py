"""The starter's command-line interface (`python starter.py`, see docs/starter.md).

A package of its own, apart from `ecs_canary` (what the worker and the starter share), so that
the layout shows the architecture: the workflow and activities never import it, and it reaches
the deployment only through Temporal (start, signal, update, query, describe, list).

- `errors`: `CliError` and the exit status of a finished run (the exit codes are a contract).
- `format`: pure text: Web UI links, copy-paste commands, status lines.
- `runs`: reading one run from Temporal (describe, `status` query, heartbeat progress, result).
- `timeline`: what a run did since the last poll, as lines told once (the story `watch` tells).
- `progress`: `watch` and `deploy --wait`: follow a run until it closes, as plain lines or, on
  a terminal, as the live view of `live` (rich, redrawn in place).
- `commands`: one function per subcommand; `starter.py` parses the arguments and calls them.
"""
