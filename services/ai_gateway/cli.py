"""`finops-gateway`: start the gateway, or exit with a clear message when it cannot."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from pathlib import Path

# The gateway serves from one event-loop thread. A BLAS thread pool (the router's one matrix
# product) would only wait for cores the server needs; set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import prometheus_client
import uvicorn
import yaml
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from finops_common.arguments import at_least
from finops_common.config import ConfigError

from . import price_import
from .app import create_app
from .embeddings import EmbedderUnavailable
from .pipeline import Gateway
from .pricing import PriceTable, default_price_table
from .router import default_router
from .settings import PROFILES, GatewaySettings, load_settings, shown_settings
from .tokens import TokenizerUnavailable, encoding_name, get_encoding
from .wiring import build_gateway, open_gateway_embedder, open_store

# Idle keep-alive connections are closed by the client side first: past the idle timeouts of the
# clients and load balancers in front (httpx 5 s, an AWS load balancer's 60 s). A server that
# closes an idle connection as a client reuses it fails that request (uvicorn's default is 5 s,
# the same as httpx's, and a CI run saw one such ReadError).
KEEP_ALIVE_S = 75
LISTEN_BACKLOG = 2048  # uvicorn's default


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="finops-gateway",
        description="OpenAI- and Anthropic-compatible AI gateway over simulated providers. "
        "`finops-gateway prices import FILE` refreshes the price table instead.",
    )
    parser.add_argument(
        "--profile", choices=PROFILES, help="built-in settings preset (default: optimized)"
    )
    parser.add_argument(
        "--config",
        type=Path,
        action="append",
        default=[],
        help="YAML settings file applied over the profile; repeat to merge several in order",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=at_least(1, 65535), default=8080, help="port to bind (default 8080)"
    )
    parser.add_argument(
        "--metrics-port",
        type=at_least(0, 65535),
        help="port of /metrics (default: the metrics_port setting, 9464; 0 turns it off)",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument(
        "--print-settings",
        action="store_true",
        help="print the settings in force (profile, each --config, --metrics-port) as YAML, keys "
        "as their sha256 digests and thresholds resolved (routing's loads the embedder), and exit",
    )
    parser.add_argument(
        "--check-embedder",
        action="store_true",
        help="load the embedding model in force (GATEWAY_EMBEDDING_MODEL or "
        "cache.semantic.model), check that the learned router uses its embedding head with it, "
        "and exit: 0 if it does, 2 if not",
    )
    return parser.parse_args(argv)


def _fail(message: str) -> int:
    print(f"finops-gateway: {message}", file=sys.stderr)
    return 2


def _print_settings(settings: GatewaySettings) -> int:
    """A null routing threshold is the trained default of the router head that the embedder in
    force selects, so the embedder is opened to tell which (as at start)."""
    shown = shown_settings(settings)
    if settings.routing.enabled and settings.routing.threshold is None:
        try:
            embedder = open_gateway_embedder(settings)
        except EmbedderUnavailable as exc:
            return _fail(str(exc))
        shown["routing"]["threshold"] = default_router().default_threshold(embedder)
    print(yaml.safe_dump(shown, sort_keys=False), end="")
    return 0


def _check_embedder(settings: GatewaySettings) -> int:
    """The image build runs this: a model other than the router's would route worse, silently."""
    try:
        embedder = open_gateway_embedder(settings)
    except EmbedderUnavailable as exc:
        return _fail(str(exc))
    refusal = default_router().embedding_head_refusal(embedder)
    if refusal is not None:
        return _fail(refusal)
    assert embedder is not None  # the router accepts no missing embedder
    print(f"finops-gateway: the learned router uses its embedding head with {embedder.name}")
    return 0


class CannotStart(Exception):
    """A start-up failure the user can fix: its message names the flag, setting or file."""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["prices"]:
        return price_import.main(argv[1:])
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(args.profile, *args.config)
    except ConfigError as exc:
        return _fail(f"configuration error:\n{exc}")
    if args.metrics_port is not None:  # the flag over the setting; both checked as read
        settings = settings.model_copy(update={"metrics_port": args.metrics_port})
    if args.print_settings:
        return _print_settings(settings)
    if args.check_embedder:
        return _check_embedder(settings)
    try:
        table = _price_table_with_tokenizers()
        gateway = _open_gateway(settings, table)
        api_socket = _listen(args.host, args.port)
    except CannotStart as exc:
        return _fail(str(exc))
    with api_socket:
        try:
            _serve_metrics(gateway.meter.metrics.registry, args.host, settings.metrics_port)
        except CannotStart as exc:
            return _fail(str(exc))
        logging.getLogger("ai_gateway").info(
            "profile=%s store=%s embedder=%s listening on http://%s:%d (metrics port %d)",
            settings.profile,
            gateway.store.kind,
            gateway.embedder.name if gateway.embedder else "none",
            args.host,
            args.port,
            settings.metrics_port,
        )
        serve(create_app(gateway, freeze_heap=True), api_socket, args.log_level)
    return 0


def _price_table_with_tokenizers() -> PriceTable:
    """The model table, every model's tokenizer loaded: a missing tokenizer file stops start-up
    with its own message instead of failing the first request for that model."""
    table = default_price_table()
    try:
        for card in table.models.values():
            get_encoding(encoding_name(card))
    except TokenizerUnavailable as exc:
        raise CannotStart(str(exc)) from exc
    return table


def _open_gateway(settings: GatewaySettings, table: PriceTable) -> Gateway:
    """The gateway with its store and embedder, or why not; a router that cannot use its
    embedding head is a warning, not a failure."""
    try:
        store = open_store(os.environ.get("REDIS_URL") or None, settings=settings.store)
    except ValueError as exc:
        raise CannotStart(str(exc)) from exc
    try:
        gateway = build_gateway(settings, store, table=table)
    except EmbedderUnavailable as exc:
        raise CannotStart(str(exc)) from exc
    if settings.routing.enabled:
        refusal = default_router().embedding_head_refusal(gateway.embedder)
        if refusal is not None:
            logging.getLogger("ai_gateway").warning("%s", refusal)
    return gateway


def _listen(host: str, port: int) -> socket.socket:
    try:
        return listening_socket(host, port)
    except OSError as exc:
        raise CannotStart(
            f"cannot listen on {host}:{port} ({exc.strerror}): set --host to an address of this "
            "machine and --port to a free port"
        ) from exc


def _serve_metrics(registry: CollectorRegistry, host: str, port: int) -> None:
    """/metrics on a port of its own (0: none): the Service applications use never exposes
    every team's spend."""
    if not port:
        return
    try:
        prometheus_client.start_http_server(port, host, registry=registry)
    except OSError as exc:
        raise CannotStart(
            f"cannot serve metrics on {host}:{port} ({exc.strerror}): set --metrics-port or the "
            "metrics_port setting to a free port, or 0 to turn it off"
        ) from exc


def listening_socket(host: str, port: int) -> socket.socket:
    """The API's socket, listening before start-up goes on: a busy port or a host that is not
    this machine's stops it with a message naming the flags (uvicorn would say so only after the
    application's start-up, among its own log lines), and the metrics port cannot take the same
    port. The address family is uvicorn's rule (IPv6 for an address with a colon). OSError
    (gaierror too) when it cannot."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def serve(app: FastAPI, api_socket: socket.socket, log_level: str) -> None:
    """Serve the app on the bound socket until a signal stops the server."""
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        loop="uvloop",  # cheaper per request than asyncio and h11 (README, "Benchmarks")
        http="httptools",
        timeout_keep_alive=KEEP_ALIVE_S,
    )
    uvicorn.Server(config).run(sockets=[api_socket])


if __name__ == "__main__":
    sys.exit(main())
