"""moto's S3 server, with its conditional writes made atomic as on AWS S3.

moto checks ``If-Match`` / ``If-None-Match`` and then stores, with no lock between, on a threaded server: two racing
conditional PUTs of one key can both pass, where AWS S3 answers one of them 412 (or 409). The registry's version
numbers and latest pointer, claims and commit markers rely on S3's answer, so the suite runs moto's own server with
one lock held around each object write, delete and multipart completion: the check and the store happen together,
as on S3. Everything else is moto unchanged. Run as ``python tests/moto_atomic_server.py -H 127.0.0.1 -p PORT``.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from moto.s3.responses import S3Response
from moto.server import main

_WRITE = threading.RLock()
_DECIDING = ("put_object", "delete_object", "copy_object", "_key_response_post")


def _serialised(method: Any) -> Any:
    @functools.wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _WRITE:
            return method(*args, **kwargs)

    return locked


for _name in _DECIDING:
    setattr(S3Response, _name, _serialised(getattr(S3Response, _name)))


if __name__ == "__main__":
    main()
