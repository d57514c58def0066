"""`ferryllm serve | check-config | version`. User mistakes print one `error: …` line on stderr
and exit non-zero (2 for usage); never a traceback."""
from __future__ import annotations

import argparse
import dataclasses
import errno
import sys
from typing import NoReturn

from . import __version__
from .config import Config, ConfigError, check_listen, load_config


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see '{self.prog} --help')\n")


def _listen_arg(value: str) -> str:
    problem = check_listen(value)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return value


def _workers_arg(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got \"{value}\"")
    return int(value)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ferryllm", description="Universal LLM protocol gateway.")
    parser.add_argument("--version", action="version", version=f"ferryllm {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="validate the config, bind and serve")
    source = serve.add_mutually_exclusive_group()
    source.add_argument("-c", "--config", metavar="PATH", help="TOML config file")
    source.add_argument("--demo", action="store_true",
                        help="built-in mock upstream and config; no key, no network")
    serve.add_argument("--listen", metavar="HOST:PORT", type=_listen_arg,
                       help="override [server].listen (demo too)")
    serve.add_argument("--workers", metavar="N", type=_workers_arg, default=1,
                       help="worker processes (default 1)")

    check = commands.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("-c", "--config", metavar="PATH", required=True, help="TOML config file")
    check.add_argument("--strict", action="store_true", help="unknown keys are errors")

    commands.add_parser("version", help="print the version")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, usage errors
        return e.code if isinstance(e.code, int) else 2
    if args.command == "version":
        print(f"ferryllm {__version__}")
        return 0
    if args.command == "check-config":
        return _check_config(args.config, strict=args.strict)
    if args.command == "serve":
        return _serve(args)
    _error("no command given; use serve, check-config or version (see 'ferryllm --help')")
    return 2


def _check_config(path: str, *, strict: bool) -> int:
    config = _load(path, strict=strict)
    if config is None:
        return 1
    print(f"config ok: {path}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    config: Config | None = None
    try:
        if args.demo:
            from .server import run_demo
            return run_demo(listen=args.listen)
        if not args.config:
            _error("serve needs --config PATH (or --demo for the built-in mock setup)")
            return 2
        config = _load(args.config, strict=False)
        if config is None:
            return 1
        if args.listen:
            config = dataclasses.replace(
                config, server=dataclasses.replace(config.server, listen=args.listen))
        from .server import run
        return run(config, workers=args.workers)
    except KeyboardInterrupt:
        return 130
    except OSError as e:
        if e.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            listen = args.listen or (config.server.listen if config else "127.0.0.1:3000")
            _error(f"cannot listen on {listen}: {e.strerror}")
        else:
            _error(str(e))
        return 1
    except (ConfigError, ValueError) as e:
        _error(str(e))
        return 1


def _load(path: str, *, strict: bool) -> Config | None:
    """The validated config with its warnings printed, or None after printing every problem."""
    try:
        config = load_config(path, strict=strict)
    except ConfigError as e:
        _error(f"{path}: {len(e.problems)} problem(s)")
        for problem in e.problems:
            print(f"  {problem}", file=sys.stderr)
        _warn(e.warnings)
        return None
    _warn(config.warnings)
    return config


def _warn(warnings: tuple[str, ...]) -> None:
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)


def _error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
