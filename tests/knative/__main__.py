"""Knative in the local cluster from the command line.

    python -m tests.knative up       build once, install into the local cluster (idempotent)
    python -m tests.knative usage    CPU and memory of Knative's and Traefik's pods at rest

`make knative-up` and `python -m tests.cluster knative` run `up`.
"""

from __future__ import annotations

import argparse
import sys

from tests.knative import install


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.knative", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("command", choices=["up", "usage"])
    parser.add_argument("--samples", type=int, default=4, help="usage: readings to average")
    parser.add_argument("--interval", type=float, default=10.0, help="usage: seconds between readings")
    args = parser.parse_args(argv)
    if args.command == "up":
        return install.main()
    from tests.knative import usage

    print(usage.report(usage.at_rest(args.samples, args.interval)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
