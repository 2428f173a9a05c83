"""The web app and HTTP API (`brushwork serve`): a front end on the library's methods.

`create_app(ServerConfig(...))` returns the ASGI app (FastAPI); `brushwork serve` runs it with uvicorn.
Needs the `serve` extra: pip install 'brushwork[serve]'.
"""

from brushwork.server.config import ServerConfig

__all__ = ["ServerConfig", "create_app"]


def __getattr__(name: str):
    # `create_app` is imported when first asked for, not above: the command line reads ServerConfig
    # (for `brushwork serve`'s flags) from this package without fastapi, an optional dependency, and
    # `from brushwork.server import create_app` is where it reports a missing one.
    if name == "create_app":
        from brushwork.server.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
