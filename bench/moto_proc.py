"""A moto server in a process of its own, for `ws-emulator --dynamodb-endpoint`: DynamoDB then gets its
own GIL instead of sharing the emulator's. Same moto fixes as the embedded server. Prints its port."""

from __future__ import annotations

import logging
import sys
import time

from moto.server import ThreadedMotoServer

from ws_emulator.aws import moto_fixes, services


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    moto_fixes.apply()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    wsgi = server._server
    if wsgi is not None:
        wsgi.app = services._serialize_dynamodb(wsgi.app, lambda: False)
    print(server.get_host_and_port()[1], flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
        sys.exit(0)


if __name__ == "__main__":
    main()
