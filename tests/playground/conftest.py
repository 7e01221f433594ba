"""A playground server on a free port, over a session in the test's own directory."""

import pytest

from trainwell.playground import PlaygroundServer, Session


@pytest.fixture
def server(tmp_path):
    s = PlaygroundServer(port=0, session=Session(tmp_path))
    s.start()
    yield s
    s.shutdown()
    s.server_close()
