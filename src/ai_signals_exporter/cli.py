"""Command line, following Prometheus exporter conventions.

    ai-signals-exporter --config.file=FILE [--web.listen-address=:9842] [--web.telemetry-path=/metrics]
                        [--web.config.file=FILE] [--log.level=info] [--log.format=logfmt|json]
    ai-signals-exporter --config.check --config.file=FILE
    ai-signals-exporter demo [--web.listen-address=...]
    ai-signals-exporter --version
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from . import __version__
from .app import Exporter
from .config import Config, ConfigError, check_config_deeply, load_config
from .logs import setup_logging
from .webapp import SHUTDOWN_GRACE_SECONDS
from .webconfig import WebConfig, load_web_config
from .webproc import WebProcess

log = logging.getLogger("ai_signals_exporter")

DEFAULT_LISTEN = ":9842"


def parse_listen_address(value: str) -> tuple[str, int]:
    """':9842' -> ('0.0.0.0', 9842); '[::1]:9842' -> ('::1', 9842)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise argparse.ArgumentTypeError(f"invalid listen address {value!r}: use [host]:port")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--web.listen-address", dest="listen", type=parse_listen_address,
                   default=parse_listen_address(DEFAULT_LISTEN), help="address to listen on (default :9842)")
    p.add_argument("--web.telemetry-path", dest="telemetry_path", default="/metrics",
                   help="path under which to expose metrics")
    p.add_argument("--web.config.file", dest="web_config_file", default=None,
                   help="exporter-toolkit web config (TLS, basic auth)")
    p.add_argument("--log.level", dest="log_level", default="info",
                   choices=["debug", "info", "warn", "error"])
    p.add_argument("--log.format", dest="log_format", default="logfmt", choices=["logfmt", "json"])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ai-signals-exporter", description=__doc__.split("\n\n")[0])
    p.add_argument("--config.file", dest="config_file", default=None, help="YAML config file")
    p.add_argument("--config.check", dest="config_check", action="store_true",
                   help="validate --config.file and exit 0 (valid) or 1 (invalid)")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    _add_common(p)
    return p


def build_demo_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ai-signals-exporter demo",
                                description="Run the exporter against a built-in simulated cluster.")
    _add_common(p)
    p.add_argument("--duration", type=float, default=0.0,
                   help="stop after this many seconds (0 = run until interrupted)")
    p.add_argument("--no-summary", dest="summary", action="store_false",
                   help="do not print the live summary")
    return p


def install_signal_handlers(exporter: Exporter, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)

    def on_hup() -> None:
        asyncio.ensure_future(exporter.reload())

    loop.add_signal_handler(signal.SIGHUP, on_hup)


async def run_exporter(args: argparse.Namespace, config: Config, web_config: WebConfig | None) -> None:
    exporter = Exporter(config, args.config_file)
    stop = asyncio.Event()
    install_signal_handlers(exporter, stop)
    await exporter.start()
    # /metrics and the other routes are served by a process of their own (webproc.py).
    web = WebProcess(exporter, args.listen, args.telemetry_path, args.web_config_file,
                     args.log_level, args.log_format)
    try:
        await web.start()
    except BaseException:
        await exporter.stop()
        raise
    scheme = "https" if web_config and web_config.tls_server_config else "http"
    log.info("listening on %s://%s:%d%s (web process %d)", scheme, args.listen[0], args.listen[1],
             args.telemetry_path, web.pid)
    await stop.wait()
    log.info("shutting down")
    try:
        async with asyncio.timeout(SHUTDOWN_GRACE_SECONDS):
            await web.stop()
            await exporter.stop()
    except TimeoutError:
        log.warning("shutdown took longer than %.0fs; exiting anyway", SHUTDOWN_GRACE_SECONDS)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "demo":
        args = build_demo_parser().parse_args(argv[1:])
        setup_logging(args.log_level, args.log_format)
        from .sim.demo import run_demo

        return run_demo(args)

    args = build_parser().parse_args(argv)
    if args.version:
        print(f"ai-signals-exporter, version {__version__}")
        return 0
    setup_logging(args.log_level, args.log_format)
    if args.config_file is None:
        if args.config_check:
            print("--config.check needs --config.file", file=sys.stderr)
            return 1
        config = Config()
    else:
        try:
            config = load_config(args.config_file)
        except ConfigError as exc:
            print(f"invalid config:\n{exc}", file=sys.stderr)
            return 1
    web_config = None
    if args.web_config_file:
        try:
            web_config = load_web_config(args.web_config_file)
        except ConfigError as exc:
            print(f"invalid web config:\n{exc}", file=sys.stderr)
            return 1
    if args.config_check:
        try:
            check_config_deeply(config, args.config_file)
        except ConfigError as exc:
            print(f"invalid config:\n{exc}", file=sys.stderr)
            return 1
        print(f"{args.config_file}: config is valid")
        return 0
    try:
        asyncio.run(run_exporter(args, config, web_config))
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
