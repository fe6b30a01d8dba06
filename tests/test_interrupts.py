from __future__ import annotations

import os
import signal

import pytest

from sepconv.interrupts import StopRequests


def test_stop_requests_turn_sigterm_into_a_flag_and_restore_the_handler():
    before = signal.getsignal(signal.SIGTERM)
    with StopRequests() as requests:
        assert not requests.requested
        os.kill(os.getpid(), signal.SIGTERM)
        assert requests.requested
        with pytest.raises(KeyboardInterrupt):  # a second signal stops at once
            os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is before


def test_check_raises_only_after_a_request():
    with StopRequests() as requests:
        requests.check()  # nothing requested: returns
        os.kill(os.getpid(), signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            requests.check()
