"""The web app and HTTP API (`brushwork serve`): a front end on the library's methods.

`create_app(ServerConfig(...))` returns the ASGI app (FastAPI); `brushwork serve` runs it with uvicorn.
Needs the `serve` extra: pip install 'brushwork[serve]'.
"""

from brushwork.server.config import ServerConfig
from brushwork.server.app import create_app as _create_app

__all__ = ["ServerConfig", "create_app"]


def create_app(config: ServerConfig | None = None):
    return _create_app(config)
