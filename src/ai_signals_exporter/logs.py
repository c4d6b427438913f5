"""Logging in logfmt (the Prometheus ecosystem's default) or JSON, with levels."""

from __future__ import annotations

import json
import logging
import time

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}


def _ts(record: logging.LogRecord) -> str:
    t = time.gmtime(record.created)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(record.msecs):03d}Z"


def _logfmt_value(v: str) -> str:
    if v and not any(c in v for c in ' ="\n\\'):
        return v
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        if record.exc_info:
            msg += "\n" + self.formatException(record.exc_info)
        parts = [
            f"ts={_ts(record)}",
            f"level={record.levelname.lower().replace('warning', 'warn')}",
            f"logger={record.name}",
            f"msg={_logfmt_value(msg)}",
        ]
        return " ".join(parts)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": _ts(record),
            "level": record.levelname.lower().replace("warning", "warn"),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


def setup_logging(level: str = "info", fmt: str = "logfmt") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS.get(level, logging.INFO))
    # Library chatter (aiohttp access logs, kube client debug) stays at warning unless debugging.
    if level != "debug":
        for name in ("aiohttp", "kubernetes_asyncio", "botocore", "urllib3"):
            logging.getLogger(name).setLevel(logging.WARNING)
