"""`focoos swap`: a new version onto a running server, or the newest one back off it, all or nothing."""

from __future__ import annotations

import argparse

from focoos.cli.options import admin_key, given, library_option, load_model, server_url
from focoos.cli.repository import accuracy_options, add_build_arguments, build_options, repository_builder
from focoos.errors import FocoosError

NAME = "swap"
HELP = ("roll a new version out to a running server, or roll the newest back (all or nothing; built as the served "
        "version unless --target/--runtime/--max-batch-size say otherwise)")
DESCRIPTION = ("Build a model as the newest version of a served name and make a running server (started with "
               "--model-control explicit) answer with it, or with --rollback retire the newest version and answer "
               "with the one before. A swap that is refused or fails leaves the server as it was and exits non-zero. "
               "The server's admin key, if it has one, is read from $FOCOOS_ADMIN_KEY.")
ROLL_OUT = "focoos.builder.rollout:roll_out"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from focoos.client.tls import add_client_tls_arguments

    add_build_arguments(parser, served=True)
    parser.add_argument("--url", required=True, help="the server's gRPC address, host:port (Triton's gRPC port, "
                                                     "8001 by default)")
    parser.add_argument("--name", required=True, help="served name")
    parser.add_argument("--rollback", action="store_true", help="retire the newest version instead")
    library_option(parser, "--keep", type=int, default_of=(ROLL_OUT, "keep"),
                   help="versions the repository keeps after a roll-out")
    parser.add_argument("--force", action="store_true",
                        help="allow a new version with another task or other outputs under the same name")
    library_option(parser, "--lock-timeout", type=float, metavar="SECONDS", default_of=(ROLL_OUT, "lock_timeout_s"),
                   help="wait this long for another swap of the repository to finish (0: refuse at once)")
    add_client_tls_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Target, runtime and batch size not given: the served version's (roll_out reads them)."""
    from focoos.builder import roll_back, roll_out
    from focoos.client.control import ModelControl
    from focoos.client.tls import client_tls_fields

    root = repository_builder(args.repository).root
    lock = given(args, lock_timeout_s="lock_timeout")
    url = server_url(args.url, NAME, http=False)
    with ModelControl(url, admin_key=admin_key(), **client_tls_fields(args)) as control:
        if args.rollback:
            served = roll_back(root, args.name, control, **lock)
        elif args.model:
            model = load_model(args)
            served = roll_out(root, model, control, name=args.name, force=args.force, **lock,
                              **given(args, keep="keep"), **build_options(args), **accuracy_options(args, model))
        else:
            raise FocoosError("focoos swap needs --model (roll out) or --rollback")
        print(f"{served.name}: serving version {served.versions[-1]} (kept {served.versions}) on {args.url}")
    return 0
