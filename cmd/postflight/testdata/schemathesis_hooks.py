# schemathesis hooks for TestSchemathesis (SCHEMATHESIS_HOOKS): how to put a
# request body of media type application/x-ndjson on the wire, which
# schemathesis has no serializer for. POST /v1/events describes its NDJSON
# body as an array of events: one JSON value per line. A value generated as
# something other than an array (negative data) is sent as one line.
import json

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    items = value if isinstance(value, list) else [value]
    return "".join(json.dumps(v) + "\n" for v in items).encode("utf-8")
