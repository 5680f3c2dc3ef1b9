"""Close causes as `$disconnect` reports them: the client's code, the server's own close, a dropped socket."""

from ws_emulator.gateway import closing
from ws_emulator.gateway.closing import CloseCause, CloseFrame, close_cause


def test_client_close_causes():
    assert closing.client_close_cause(1000, "bye") == closing.CloseCause(1000, "bye")
    assert closing.client_close_cause(1005, "") == closing.CloseCause(1005, closing.NO_STATUS_REASON)
    assert closing.client_close_cause(None, None).status_code == 1006


def test_a_cause_recorded_by_the_gateway_wins():
    # GIVEN the gateway closed for the idle timeout and the client answered with its own frame
    sent, received = CloseFrame(1001, "Going away"), CloseFrame(1000, "ok")
    # WHEN the cause is resolved
    cause = close_cause(closing.IDLE_TIMEOUT, sent, received, received_then_sent=False)
    # THEN the recorded cause is reported
    assert cause == closing.IDLE_TIMEOUT


def test_server_first_close_without_a_recorded_cause_reports_its_own_frame():
    # GIVEN the frame parser closed with 1009 and no reason, and the client echoed it
    sent, received = CloseFrame(1009, ""), CloseFrame(1009, "")
    # WHEN the cause is resolved
    cause = close_cause(None, sent, received, received_then_sent=False)
    # THEN it is the server's 1009 with API Gateway's reason
    assert cause == CloseCause(1009, "Message too big")


def test_server_close_that_the_client_never_answered_is_the_servers():
    # GIVEN server shutdown sent 1001 and no close frame came back
    # WHEN the cause is resolved
    cause = close_cause(None, CloseFrame(1001, ""), None, received_then_sent=None)
    # THEN it is 1001 "Going away"
    assert cause == CloseCause(1001, "Going away")


def test_client_first_close_reports_the_clients_code_and_reason():
    # GIVEN the client closed with 4001 "leaving" and the server echoed it
    sent, received = CloseFrame(4001, "leaving"), CloseFrame(4001, "leaving")
    # WHEN the cause is resolved
    cause = close_cause(None, sent, received, received_then_sent=True)
    # THEN the client's code and reason are reported
    assert cause == CloseCause(4001, "leaving")


def test_no_close_frame_at_all_is_an_abnormal_closure():
    # GIVEN the TCP connection dropped without any close frame
    # WHEN the cause is resolved
    cause = close_cause(None, None, None, received_then_sent=None)
    # THEN it is 1006
    assert cause.status_code == closing.ABNORMAL


def test_client_close_without_a_code_is_1005():
    # GIVEN a close frame without a status code (the protocol records 1005)
    # WHEN the cause is resolved
    cause = close_cause(None, None, CloseFrame(1005, ""), received_then_sent=None)
    # THEN it is 1005 with API Gateway's reason
    assert cause == CloseCause(1005, closing.NO_STATUS_REASON)
