"""moto's server, handling one request at a time.

`moto_server` serves requests on threads, and moto does not lock an item
between checking a condition expression and applying the write; DynamoDB
does both atomically. Serving one request at a time gives the tests
DynamoDB's atomicity. Usage: moto_serve.py HOST PORT
"""
import os
import sys

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

host, port = sys.argv[1], int(sys.argv[2])
os.environ.setdefault("MOTO_PORT", str(port))
app = DomainDispatcherApplication(create_backend_app)
run_simple(host, port, app, threaded=False, request_handler=MotoRequestHandler)
