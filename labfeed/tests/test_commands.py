"""`import_hl7` files and the MLLP listener over a real socket."""

import io
import os
import signal
import socket
import threading
import time

import pytest
from django.core.management import CommandError, call_command

from labfeed import hl7v2
from labfeed.listener import send, serve
from labfeed.models import HL7Message
from labfeed.tests.factories import MESSAGES, oru, potassium, sodium
from patients.models import Observation
from patients.tests.factories import PatientFactory


def test_import_hl7_receives_every_message_of_every_file(connection, patient, clinic_a, capsys):
    PatientFactory(clinic=clinic_a, mrn="RV1002", birth_date="1975-02-03", sex="male")

    call_command("import_hl7", str(MESSAGES / "two_patients_v251.hl7"), str(MESSAGES / "correction_v23.hl7"))

    out = capsys.readouterr().out
    assert "FILE-251-1): AA results stored: created 3, skipped 1" in out
    assert "OBX 2 (BLOODFILM Blood film comment)" in out
    assert "FILE-23-2): AA results stored: corrected 1" in out
    assert Observation.objects.filter(patient=patient).count() == 3  # K 4.4 on the 15th, Na, K 4.8 on the 16th
    assert set(HL7Message.objects.values_list("version", flat=True)) == {"2.5.1", "2.3"}


def test_import_hl7_fails_when_a_message_is_refused(connection, patient, tmp_path):
    path = tmp_path / "bad.hl7"
    path.write_text(oru(potassium(unit="mg/dL")))

    with pytest.raises(CommandError, match="1 message"):
        call_command("import_hl7", str(path))

    assert not Observation.all_objects.exists()


@pytest.fixture
def listener(transactional_db):
    server = serve("127.0.0.1", 0)
    yield server
    server.stop()


def test_the_listener_acknowledges_each_message_of_a_connection_after_storing_it(listener, connection, patient):
    messages = [oru(potassium("4.2"), control_id="S1"), oru(sodium("150"), control_id="S2"), "garbage"]

    acks = send("127.0.0.1", listener.port, messages)

    assert [hl7v2.ack_code_of(ack) for ack in acks] == ["AA", "AA", "AR"]
    assert "MSA|AA|S1" in acks[0]
    assert {o.analyte.code: o.value for o in Observation.objects.filter(patient=patient)} == {
        "potassium": 4.2, "sodium": 150,
    }  # fmt: skip


def test_the_listener_answers_a_resent_message_without_storing_it_twice(listener, connection, patient):
    message = oru(potassium("4.2"), control_id="S1")

    first = send("127.0.0.1", listener.port, [message])
    again = send("127.0.0.1", listener.port, [message])

    assert [hl7v2.ack_code_of(a) for a in first + again] == ["AA", "AA"]
    assert Observation.objects.filter(patient=patient).count() == 1


def test_the_listener_reassembles_a_message_sent_in_pieces(listener, connection, patient):
    framed = hl7v2.frame(oru(potassium("4.2"), control_id="S1"))
    with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as sock:
        for start in range(0, len(framed), 20):
            sock.sendall(framed[start : start + 20])
        reader = hl7v2.MllpReader()
        acks = []
        while not acks:
            acks = reader.feed(sock.recv(4096))

    assert hl7v2.ack_code_of(acks[0].decode()) == "AA"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _send_when_listening(port: int, messages: list[str], acks: list[str]) -> None:
    for _attempt in range(100):
        try:
            acks.extend(send("127.0.0.1", port, messages))
            break
        except ConnectionRefusedError:
            time.sleep(0.1)
    os.kill(os.getpid(), signal.SIGTERM)


def test_hl7_listen_serves_until_sigterm_then_stops_cleanly(transactional_db, connection, patient):
    port, acks, out = _free_port(), [], io.StringIO()
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    client = threading.Thread(target=_send_when_listening, args=(port, [oru(potassium("4.2"))], acks))
    client.start()
    try:
        call_command("hl7_listen", "--port", str(port), stdout=out)
    finally:
        client.join(timeout=30)
        for signum, handler in handlers.items():
            signal.signal(signum, handler)

    assert [hl7v2.ack_code_of(ack) for ack in acks] == ["AA"]
    assert out.getvalue().splitlines()[-1] == "HL7 listener stopped."
    assert Observation.objects.filter(patient=patient).count() == 1
