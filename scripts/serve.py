#!/usr/bin/env python3
"""A tiny offline static file server for the dashboard (www/), standard library only.

Unlike a bare `python3 -m http.server`, it always serves `.wasm` as `application/wasm` (needed by
`WebAssembly.instantiateStreaming`) and `.js`/`.mjs` as `text/javascript` whatever the machine's
mime.types says, binds to 127.0.0.1 by default, and tells the browser not to cache, so a rebuild
shows on reload.

Once listening it prints exactly one line `Serving <dir> at http://HOST:PORT/` on stdout, so a
caller that asked for `--port 0` (any free port) can read the port back.
"""

import argparse
import functools
import http.server
import os
import sys

MIME_TYPES = {
    ".css": "text/css",
    ".html": "text/html",
    ".js": "text/javascript",
    ".json": "application/json",
    ".mjs": "text/javascript",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".wasm": "application/wasm",
}


class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES}

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format, *args):
        if not self.server.quiet:
            super().log_message(format, *args)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port; 0 picks a free one")
    parser.add_argument("--directory", default="www", help="folder to serve")
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    args = parser.parse_args()

    directory = os.path.abspath(args.directory)
    if not os.path.isfile(os.path.join(directory, "index.html")):
        sys.exit(f"error: {directory}/index.html not found")

    handler = functools.partial(Handler, directory=directory)
    with http.server.ThreadingHTTPServer((args.bind, args.port), handler) as server:
        server.quiet = args.quiet
        host, port = server.server_address[:2]
        print(f"Serving {directory} at http://{host}:{port}/", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
