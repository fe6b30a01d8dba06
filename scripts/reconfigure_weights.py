"""Write a weights file with other settings among those its family lets a run change without
retraining (the config's ``PRIOR_FIELDS``: how the motion is found or applied, never a shape),
the tensors unchanged.

E.g. ``sepconv-motion`` with its selector's share applied to the warps instead of the flows:

    python scripts/reconfigure_weights.py src/sepconv/weights/files/sepconv-motion.safetensors \\
        runs/motion-warps.safetensors --set selection=warps

The input is never overwritten. The file's other metadata is kept, and ``reconfigured`` records
what changed. Values are read as JSON where they parse (numbers, true/false), else as text.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any


def parse_setting(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` -> (name, value), the value as JSON if it parses, else the text."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise ValueError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="a sepconv .safetensors file")
    parser.add_argument("output", type=Path, help="where to write the reconfigured file")
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        required=True,
        metavar="NAME=VALUE",
        help="a setting to change (repeatable)",
    )
    args = parser.parse_args(argv)

    from sepconv.errors import SepconvError
    from sepconv.models.checkpoint import load_weights, save_safetensors

    try:
        if args.output.resolve() == args.source.resolve():
            raise SepconvError(f"{args.output} is the input; write to another file")
        if args.source.suffix != ".safetensors":
            raise SepconvError(f"{args.source} is not a .safetensors file")
        changes = dict(parse_setting(text) for text in args.settings)
        loaded = load_weights(args.source)
        model = loaded.model
        allowed = getattr(model.config, "PRIOR_FIELDS", ())
        refused = sorted(set(changes) - set(allowed))
        if refused:
            raise SepconvError(
                f"cannot change {', '.join(refused)} without retraining; this family allows "
                f"{', '.join(allowed) or 'nothing'}"
            )
        try:
            model.config = replace(model.config, **changes)
        except (TypeError, ValueError) as error:
            raise SepconvError(f"invalid setting: {error}") from None
        kept = {key: value for key, value in loaded.metadata.items() if key != "config"}
        kept["reconfigured"] = json.dumps(changes)
        save_safetensors(args.output, model, metadata=kept)
    except (SepconvError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.output} ({', '.join(f'{k}={v}' for k, v in changes.items())})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
