"""`edge-asd run --config FILE`: the daemon (see edge_asd/daemon.py)."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger("edge_asd.run")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="the daemon: score live audio and publish alerts over MQTT",
        description="Capture the configured sources, score every machine each hop, and "
        "publish states and events over MQTT (see configs/ for example configs). "
        "SIGTERM or Ctrl-C stops it cleanly after the window in flight.",
    )
    parser.add_argument("--config", required=True, metavar="FILE", help="the daemon's YAML config")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edge_asd.blas import limit_blas_to_one_thread
    from edge_asd.commands.validate_config import summary
    from edge_asd.config import load_config, resolve_password
    from edge_asd.daemon import Daemon

    config = load_config(args.config)
    # Both passwords before anything slow (model, warm-up): an unset variable fails at once.
    password = resolve_password(config.mqtt)
    web_password = resolve_password(config.web, key="web") if config.web.enabled else None
    for line in summary(config):  # secrets are not in it
        log.info("config: %s", line)
    # Small matrices, and the page computes from several threads: one BLAS thread for the
    # whole daemon, set once (edge_asd.blas), never per call.
    limit_blas_to_one_thread()
    return Daemon(config, password=password, web_password=web_password).run()
