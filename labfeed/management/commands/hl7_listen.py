"""`manage.py hl7_listen [--host 127.0.0.1] [--port 2575]`: the long-running MLLP listener of the lab interface."""

import logging
import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from labfeed.listener import serve


class Command(BaseCommand):
    help = (
        "Listen for HL7 v2 ORU^R01 messages over MLLP and answer each with its ACK once it is committed. One "
        "thread per connection, any number of messages per connection; SIGTERM or Ctrl-C stops it cleanly."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (0.0.0.0 in a container).")
        parser.add_argument("--port", type=int, default=2575)

    def handle(self, *args, host: str, port: int, **options):
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
        logging.getLogger("labfeed").setLevel(logging.INFO)
        try:
            server = serve(host, port)
        except OSError as exc:
            raise CommandError(f"Cannot listen on {host}:{port}: {exc.strerror}.") from exc
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        self.stdout.write(f"HL7 listener on {host}:{server.port} (SIGTERM or Ctrl-C to stop)")
        self.stdout.flush()
        stop.wait()
        self.stdout.write("Stopping: finishing the messages in progress.")
        server.stop()
        self.stdout.write("HL7 listener stopped.")
