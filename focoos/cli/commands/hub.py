"""`focoos hub`: the Focoos Hub account behind FOCOOS_API_KEY: its user, models and datasets."""

from __future__ import annotations

import argparse
from pathlib import Path

from focoos.cli.options import given

NAME = "hub"
HELP = "Focoos Hub: user, models, datasets (FOCOOS_API_KEY)"
DESCRIPTION = ("Talk to the Focoos Hub with the API key of FOCOOS_API_KEY (or --api-key): without a sub-command, "
               "print who is logged in; `models` and `datasets` list the account's; `dataset download` and "
               "`dataset upload` move one dataset archive.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api-key", default=None, help="default: FOCOOS_API_KEY")
    parser.add_argument("--host-url", default=None, help="default: the hub's URL from the settings")
    hub = parser.add_subparsers(dest="hub_command")
    hub.add_parser("models", help="the models of this account", description="List the models of this account.")
    datasets = hub.add_parser("datasets", help="the datasets of this account",
                              description="List the datasets of this account.")
    datasets.add_argument("--include-shared", action="store_true", help="also those shared with it")
    dataset = hub.add_parser("dataset", help="download or upload one dataset",
                             description="Download or upload one dataset archive.").add_subparsers(
        dest="dataset_command", required=True)
    download = dataset.add_parser("download", help="download a dataset's archive",
                                  description="Download a dataset's archive (an existing one is reused).")
    download.add_argument("--ref", required=True, help="the dataset's hub reference")
    download.add_argument("--path", type=Path, default=None, help="default: FOCOOS_DATASETS_DIR")
    upload = dataset.add_parser("upload", help="upload a dataset archive",
                                description="Upload a dataset archive (.zip) to a dataset of this account.")
    upload.add_argument("--ref", required=True, help="the dataset's hub reference")
    upload.add_argument("--path", type=Path, required=True, help="the dataset .zip")


def run(args: argparse.Namespace) -> int:
    from focoos.hub import FocoosHUB

    hub = FocoosHUB(**given(args, api_key="api_key", host_url="host_url"))
    if args.hub_command == "models":
        for m in hub.list_remote_models():
            print(f"{m.ref:<24} {m.name:<32} {m.task.value:<16} {m.status.value}")
    elif args.hub_command == "datasets":
        for d in hub.list_remote_datasets(include_shared=args.include_shared):
            print(f"{d.ref:<24} {d.name:<32} {d.task.value:<16} {d.layout.value}")
    elif args.hub_command == "dataset" and args.dataset_command == "download":
        print(f"downloaded: {hub.get_remote_dataset(args.ref).download_data(**given(args, path='path'))}")
    elif args.hub_command == "dataset" and args.dataset_command == "upload":
        print(f"uploaded: {hub.get_remote_dataset(args.ref).upload_data(str(args.path))}")
    else:
        user = hub.get_user_info()
        print(f"logged in as {user.email} on {hub.host_url}")
    return 0
