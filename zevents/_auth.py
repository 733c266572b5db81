"""The ZAP authenticator a CURVE server runs inside its process (private).

libzmq asks it about every CURVE client that completes its handshake: a client whose
public key is among the certificates of the ``curve_allow`` directory is let in; any
other is refused. Each refusal is logged at DEBUG with the key's verdict, and its
address is kept (``refused``) for the ``zevents._trust.ConnectionLog`` of the socket,
which tells it at WARNING, with the peer's address and port, when the refused
connection closes.
"""

from __future__ import annotations

import logging
from collections import deque
from pathlib import Path
from typing import Any

import zmq
from zmq.auth.thread import ThreadAuthenticator

from zevents.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["CurveAuthenticator"]


class CurveAuthenticator(ThreadAuthenticator):
    """ZAP on ``context`` for CURVE clients whose keys are in ``allow``.

    Args:
        context: The context of the server's socket (one authenticator per context).
        allow: A directory of allowed clients' public-key certificates (``*.key``).

    Raises:
        ConfigError: ``allow`` is not a directory.
    """

    def __init__(self, context: zmq.Context[Any], allow: str | Path) -> None:
        folder = Path(allow).expanduser()
        if not folder.is_dir():
            raise ConfigError(
                f"option 'curve_allow': {allow} is not a directory of client keys",
                option="curve_allow",
            )
        super().__init__(context, log=logging.getLogger("zevents.auth.zap"))
        self.keys_dir = folder
        self._asking: dict[bytes, tuple[str, str]] = {}
        #: The addresses (host, no port: ZAP gives none) of the clients refused, oldest
        #: first, until a connection log takes them (bounded: a server without one
        #: keeps the last 1,000). Appended before libzmq hears the verdict, so before
        #: its monitor reports the refusal.
        self.refused: deque[str] = deque(maxlen=1000)

    def start(self) -> None:
        """Start answering ZAP requests (before the server binds)."""
        super().start()
        self.configure_curve(domain="*", location=str(self.keys_dir))

    async def handle_zap_message(self, msg: list[bytes]) -> None:
        if len(msg) >= 6:
            address = msg[3].decode("utf-8", "replace")
            self._asking[msg[1]] = (address, msg[5].decode("ascii", "replace"))
        await super().handle_zap_message(msg)

    def _send_zap_reply(
        self,
        request_id: bytes,
        status_code: bytes,
        status_text: bytes,
        user_id: str = "anonymous",
    ) -> None:
        address, mechanism = self._asking.pop(request_id, ("(unknown)", "?"))
        if status_code != b"200":
            self.refused.append(address)
            logger.debug(
                "refused a %s connection from %s: %s",
                mechanism,
                address,
                status_text.decode("utf-8", "replace"),
            )
        super()._send_zap_reply(request_id, status_code, status_text, user_id)
