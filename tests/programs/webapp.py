"""The smallest WSGI and ASGI apps, for gunicorn and uvicorn under held sockets: each answers its pid."""

import os


def app(environ, start_response):  # WSGI (gunicorn)
    body = f"{os.getpid()} wsgi\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


async def asgi(scope, receive, send):  # ASGI (uvicorn)
    if scope["type"] != "http":
        return
    body = f"{os.getpid()} asgi\n".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
