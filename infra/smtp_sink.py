"""A real SMTP server for the local stack and the tests (aiosmtpd).

Accepts AUTH PLAIN/LOGIN without TLS (it only listens on loopback), and writes every message
it accepts to <maildir>/<time>-<id>.json with its envelope, the login used and the raw data,
so tests can read what arrived. Recipients starting with `reject-temp` get a 451 (a transient
failure), `reject-perm` a 550 (a permanent one).

    python smtp_sink.py <port> <maildir>
"""

import asyncio
import json
import os
import sys
import time
import uuid

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    def __init__(self, maildir):
        self.maildir = maildir

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0]
        if local.startswith("reject-temp"):
            return "451 4.3.0 try again later"
        if local.startswith("reject-perm"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        login = session.auth_data
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "login": login.login.decode() if isinstance(login, LoginPassword) else None,
            "password": login.password.decode() if isinstance(login, LoginPassword) else None,
            "data": envelope.content.decode("utf8", errors="replace"),
        }
        name = f"{time.time_ns()}-{uuid.uuid4().hex}.json"
        tmp = os.path.join(self.maildir, "." + name)
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.replace(tmp, os.path.join(self.maildir, name))
        return "250 2.0.0 queued"


def accept_any(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=True, auth_data=auth_data)


def main():
    port, maildir = int(sys.argv[1]), sys.argv[2]
    os.makedirs(maildir, exist_ok=True)
    controller = Controller(
        Sink(maildir),
        hostname="127.0.0.1",
        port=port,
        authenticator=accept_any,
        auth_require_tls=False,
        auth_exclude_mechanism=["CRAM-MD5"],
    )
    controller.start()
    print(f"smtp sink on 127.0.0.1:{port}, mail in {maildir}", flush=True)
    try:
        asyncio.get_event_loop().run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
