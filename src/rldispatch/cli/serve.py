"""``rldispatch serve``: the HTTP API (suggest, status, toggle, metrics, outcome)."""

from __future__ import annotations

import argparse
import copy
import logging
import os
import sys
from pathlib import Path

from rldispatch.agents.serving import RUNTIMES
from rldispatch.cli import VERBS
from rldispatch.cli.common import add_reward_argument, port_number, positive_int
from rldispatch.policies.baselines import BASELINES
from rldispatch.service.config import DEFAULT_FALLBACK_TIME_LIMIT_S, DEFAULT_LOOKAHEAD_BUDGET_MS
from rldispatch.service.decisions.request_budget import DEFAULT_REQUEST_BUDGET_MS

LOG_LEVELS = ("debug", "info", "warning", "error")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help=VERBS["serve"],
        description=(
            "Serve dispatch suggestions over HTTP. Without --model (or with a broken one) the "
            "service still starts and the fallback heuristic answers. Tokens come from "
            "RLDISPATCH_TOKENS / RLDISPATCH_ADMIN_TOKENS / --tokens-file; with none, an admin "
            "token is created in the data folder. See docs/service.md."
        ),
    )
    parser.add_argument(
        "--model",
        help=(
            "model file: flat DQN or pairwise (any fleet size), .safetensors or its .onnx "
            "export; env RLDISPATCH_MODEL"
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument(
        "--port", type=port_number, default=8000, help="port to listen on, 1 to 65535 (8000)"
    )
    parser.add_argument(
        "--runtime",
        choices=RUNTIMES,
        help=(
            "model runtime (auto: ONNX Runtime for .onnx files, NumPy for model files; a "
            "pairwise model runs on NumPy or ONNX Runtime)"
        ),
    )
    parser.add_argument(
        "--fallback", choices=sorted(BASELINES), help="fallback heuristic (insertion)"
    )
    parser.add_argument(
        "--fallback-time-limit",
        type=float,
        metavar="SECONDS",
        help=(
            "wall-clock cap of a reopt fallback's re-plan, per request (default "
            f"{DEFAULT_FALLBACK_TIME_LIMIT_S:g}; 0: none, answers that never depend on the "
            "machine's speed); env RLDISPATCH_FALLBACK_TIME_LIMIT_S"
        ),
    )
    parser.add_argument(
        "--lookahead",
        type=int,
        metavar="N",
        help=(
            "a pairwise or guided-reopt model's decisions (each of a round's, a suggestion's "
            "driver) play its own choice and N other candidates on in copies of the live day "
            "and take the best (env RLDISPATCH_LOOKAHEAD; default 0: none)"
        ),
    )
    parser.add_argument(
        "--lookahead-budget-ms",
        type=float,
        metavar="MS",
        help=(
            "wall-clock budget of one lookahead decision; past it the candidates not yet "
            "played are passed over (a guided-reopt model's re-plan counts in it: its search "
            f"stops there) (default {DEFAULT_LOOKAHEAD_BUDGET_MS:g}; 0: none); env "
            "RLDISPATCH_LOOKAHEAD_BUDGET_MS"
        ),
    )
    parser.add_argument(
        "--request-budget-ms",
        type=float,
        metavar="MS",
        help=(
            "wall-clock budget of one suggestion or round from its arrival: past it a round "
            "ends with what it assigned (ended: budget), a suggestion falls back; a request "
            f"that cannot start within it is answered 503 (default {DEFAULT_REQUEST_BUDGET_MS:g}"
            "); env RLDISPATCH_REQUEST_BUDGET_MS"
        ),
    )
    parser.add_argument(
        "--data-dir", help="SQLite file and local admin token (env RLDISPATCH_DATA_DIR)"
    )
    parser.add_argument(
        "--database-url", help="SQLAlchemy URL of the decision log (env RLDISPATCH_DATABASE_URL)"
    )
    parser.add_argument(
        "--tokens-file", help="JSON file of API tokens (env RLDISPATCH_TOKENS_FILE)"
    )
    parser.add_argument(
        "--models-dir",
        help=(
            "folder the models an admin swaps in must lie in (env RLDISPATCH_MODELS_DIR; "
            "default: the --model file's folder, else <data dir>/models)"
        ),
    )
    parser.add_argument(
        "--retain-days",
        type=positive_int,
        help=(
            "prune suggestions and outcomes older than N days, at start and every hour (env "
            "RLDISPATCH_RETAIN_DAYS; default: kept forever)"
        ),
    )
    parser.add_argument(
        "--archive-dir",
        help=(
            "write the rows to prune here first, a JSON-lines file per table and day (env "
            "RLDISPATCH_ARCHIVE_DIR)"
        ),
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="worker processes (1); they share the switch and models through the database",
    )
    parser.add_argument(
        "--tile-url",
        metavar="TEMPLATE",
        help=(
            "map tiles of the dispatcher's page (/ui), a URL template with {z}, {x} and {y}, "
            "loaded by the browser; 'none': no basemap (env RLDISPATCH_TILE_URL; default "
            "OpenStreetMap's)"
        ),
    )
    parser.add_argument(
        "--travel",
        type=Path,
        metavar="FILE",
        help="the fleet's travel model: a JSON file holding the scenario format's travel block, "
        "or a scenario file (env RLDISPATCH_TRAVEL; default: the model's preset's); a request "
        "with its own travel block is played with that",
    )
    parser.add_argument(
        "--road-network",
        type=Path,
        metavar="FILE.osm.pbf",
        help="an OpenStreetMap extract: every request travels on its roads (fastest routes at "
        "the roads' speeds, the travel model's hourly factor applying) instead of the formula "
        "(env RLDISPATCH_ROAD_NETWORK; default: the formula)",
    )
    add_reward_argument(parser)
    parser.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default="info",
        help="the least severe log lines printed, the service's and the HTTP server's (info)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # An address it cannot listen on is refused first, before the service's modules load.
    check_listen_address(args.host, args.port)
    import uvicorn
    from sqlalchemy import create_engine
    from sqlalchemy.exc import ArgumentError

    from rldispatch.cli import CliError
    from rldispatch.database_url import mask_database_url, mask_secrets_in
    from rldispatch.service.config import ServiceConfig, config_environ
    from rldispatch.service.http.app import create_app
    from rldispatch.service.http.auth import AuthConfigError, build_registry
    from rldispatch.service.log.store import prepare_private_folder
    from rldispatch.service.workers import run_workers, serve

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    one_torch_thread()
    try:
        config = ServiceConfig.from_env(
            model_path=args.model,
            runtime=args.runtime,
            fallback_policy=args.fallback,
            fallback_time_limit_s=args.fallback_time_limit,
            lookahead=args.lookahead,
            lookahead_budget_ms=args.lookahead_budget_ms,
            request_budget_ms=args.request_budget_ms,
            data_dir=args.data_dir,
            database_url=args.database_url,
            tokens_file=args.tokens_file,
            models_dir=args.models_dir,
            retain_days=args.retain_days,
            archive_dir=args.archive_dir,
            tile_url=args.tile_url,
            travel_path=args.travel,
            reward_path=args.reward,
            road_network_path=args.road_network,
        )
        config.travel()  # a bad file is one line here, before the service starts
        config.road_network()
        config.reward()
    except ValueError as error:
        raise CliError(str(error)) from error
    if config.archive_dir is not None and config.retain_days is None:
        raise CliError("archive-dir: only with --retain-days (nothing is pruned without it)")
    url = config.resolved_database_url
    try:
        create_engine(url).dispose()  # parses the URL and finds its driver; connects later
    except (ArgumentError, ValueError, ImportError) as error:
        raise CliError(
            f"database-url: {mask_database_url(url)} is not a usable database URL "
            f"({mask_secrets_in(str(error), url)})"
        ) from error
    try:
        if args.workers == 1:
            app = create_app(config)
        else:  # checked once here; the admin token, if any, is created before the workers
            prepare_private_folder(config.data_dir)
            build_registry(config.environ, config.tokens_file, config.data_dir)
    except (AuthConfigError, ValueError) as error:
        raise CliError(str(error)) from error
    if args.workers == 1:
        serve(app, args.host, args.port, log_level=args.log_level)
        return 0
    # Each worker process builds its own app from the same configuration, in its environment.
    os.environ.update(config_environ(config))
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)  # workers log rldispatch too
    log_config["loggers"]["rldispatch"] = {
        "handlers": ["default"],
        "level": args.log_level.upper(),
        "propagate": False,
    }
    try:
        run_workers(
            "rldispatch.cli.serve:worker_app",
            args.host,
            args.port,
            args.workers,
            {"log_level": args.log_level, "log_config": log_config},
        )
    except OSError as error:  # the port is taken or the address is not ours
        message = f"port: cannot listen on {args.host}:{args.port} ({error.strerror})"
        raise CliError(message) from error
    return 0


def check_listen_address(host: str, port: int) -> None:
    """Refuse in one line an address the server could not listen on (a host that is not an
    address of this machine, a port taken), before the server starts."""
    import errno
    import socket

    from rldispatch.cli import CliError

    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # No SO_REUSEPORT: old workers sharing the port with it are found too.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as error:
        reason = error.strerror or str(error)
        if error.errno == errno.EADDRINUSE:
            raise CliError(
                f"port: cannot listen on {host}:{port} ({reason}); is another serve (or its "
                "workers) still running?"
            ) from None
        raise CliError(f"host: cannot listen on {host}:{port} ({reason})") from None


def worker_app() -> object:
    """The app of one worker process of ``serve --workers N`` (its options come from the
    environment ``run`` set before starting the workers)."""
    from rldispatch.service.http.app import create_app

    one_torch_thread()  # as in a single-process serve
    return create_app()


def one_torch_thread() -> None:
    """PyTorch on one thread in this process, whenever it loads (small networks answer
    faster on one): the service loads it only with a model that needs it, and it reads
    ``OMP_NUM_THREADS`` when it does."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
    else:
        os.environ["OMP_NUM_THREADS"] = "1"
