"""The MLLP listener: a TCP server with a thread per connection, handing each framed message to
`labfeed.services.hl7_message_receive` and writing back its acknowledgement on the same connection.

A connection carries any number of messages, one at a time (the sender waits for each ACK). Stopping the server
(SIGTERM in `manage.py hl7_listen`) stops accepting, lets a message being processed finish and be answered, and
closes the idle connections.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import threading

from django.db import close_old_connections, connections

from labfeed import hl7v2
from labfeed.services import ack_for_failure, hl7_message_receive

logger = logging.getLogger("labfeed.listener")
POLL_SECONDS = 0.5  # how often an idle connection checks whether the server is stopping


def _answer(data: bytes) -> str:
    text = hl7v2.decode(data)
    try:
        return hl7_message_receive(raw=text).ack
    except Exception:
        # The database could not take it: nothing was committed, so the lab may send it again. Never an AA.
        logger.exception("HL7 message could not be processed; answered AE")
        header = None
        with contextlib.suppress(hl7v2.Refusal):
            header = hl7v2.header_read(hl7v2.normalize(text))
        return ack_for_failure(header)
    finally:
        close_old_connections()


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: MllpServer = self.server  # type: ignore[assignment]
        self.request.settimeout(POLL_SECONDS)
        reader = hl7v2.MllpReader()
        peer = "{}:{}".format(*self.client_address[:2])
        try:
            while not server.stopping.is_set():
                try:
                    data = self.request.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    break
                for message in reader.feed(data):
                    self.request.sendall(hl7v2.frame(_answer(message)))
        except hl7v2.FramingError as exc:
            logger.warning("%s: %s; connection closed", peer, exc)
        except OSError as exc:
            logger.info("%s: connection lost (%s)", peer, exc)
        finally:
            connections.close_all()


class MllpServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = False  # a message being processed is finished and answered before the process exits
    block_on_close = True

    def __init__(self, address: tuple[str, int]):
        self.stopping = threading.Event()
        super().__init__(address, _Handler)

    @property
    def port(self) -> int:
        return self.server_address[1]

    def stop(self) -> None:
        """Stop accepting and wait for the connections' threads to finish their message (from another thread)."""
        self.stopping.set()
        self.shutdown()
        self.server_close()


def serve(host: str, port: int) -> MllpServer:
    """A started server (its loop in a thread of its own); `stop()` it."""
    server = MllpServer((host, port))
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": POLL_SECONDS}, daemon=True).start()
    logger.info("HL7 MLLP listener on %s:%s", *server.server_address[:2])
    return server


def send(host: str, port: int, messages: list[str], timeout: float = 30) -> list[str]:
    """Send messages over one MLLP connection, each after the ACK of the one before; return the ACKs (for the bench,
    the tests and a quick check of a running listener)."""
    acks = []
    reader = hl7v2.MllpReader()
    with socket.create_connection((host, port), timeout=timeout) as sock:
        for message in messages:
            sock.sendall(hl7v2.frame(message))
            answered: list[bytes] = []
            while not answered:
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError("The listener closed the connection before answering.")
                answered = reader.feed(data)
            acks.extend(hl7v2.decode(ack) for ack in answered)
    return acks
