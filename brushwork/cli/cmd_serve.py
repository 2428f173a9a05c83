"""`brushwork serve [--host 127.0.0.1] [--port 8000]`: the web app and HTTP API (uvicorn)."""

from __future__ import annotations

import ipaddress
import sys

from brushwork.cli.common import add_common_flags
from brushwork.cli.options import add_dataclass_flags, dataclass_from_args
from brushwork.errors import BrushworkError
from brushwork.server.config import ServerConfig


def register(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="run the web app and HTTP API (open the printed URL in a browser)",
        description="Serve the web page (drop a photo, pick a painting, watch it paint) and the HTTP API "
        "under /v1 (OpenAPI at /v1/openapi.json). Binds to loopback unless --host says otherwise.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s, this machine "
                   "only; 0.0.0.0 listens on every interface)")
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s; 0 picks a free one)")
    p.add_argument("--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug"),
                   help="server log level (default: %(default)s; info logs every request)")
    add_dataclass_flags(p, ServerConfig)
    add_common_flags(p)
    p.set_defaults(run=run)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args) -> int:
    try:  # the serve extra: fastapi (imported by brushwork.server) and uvicorn
        import uvicorn

        from brushwork.server import create_app
    except ImportError as exc:
        raise BrushworkError(f"serving needs the serve extra ({exc.name} is missing): "
                             "pip install 'brushwork[serve]'") from None
    if not 0 <= args.port <= 65535:
        raise BrushworkError(f"port must be between 0 and 65535, got {args.port}")
    config = dataclass_from_args(ServerConfig, args)
    config.validate()
    app = create_app(config)
    quiet = args.quiet

    class Server(uvicorn.Server):
        async def startup(self, sockets=None):
            await super().startup(sockets=sockets)
            if self.should_exit or quiet:
                return
            port = args.port
            for server in getattr(self, "servers", []):
                for sock in server.sockets:
                    port = sock.getsockname()[1]
                    break
            host = f"[{args.host}]" if ":" in args.host else args.host
            print(f"brushwork: serving on http://{host}:{port}/ (API under /v1; Ctrl-C to stop)",
                  file=sys.stderr, flush=True)
            if not _is_loopback(args.host):
                print(f"brushwork: warning: listening on {args.host}, reachable from other machines",
                      file=sys.stderr, flush=True)

    server = Server(uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level,
                                   timeout_graceful_shutdown=5))
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn shuts down cleanly on Ctrl-C, then re-raises it: a normal stop
        pass
    if not server.started:
        raise BrushworkError(f"could not start the server on {args.host}:{args.port} (see the log above)")
    if not quiet:
        print("brushwork: server stopped", file=sys.stderr)
    return 0
