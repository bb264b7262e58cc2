"""A step's alert (``retrain_finished``), POSTed by ``caretflow.alerts.send``, is also stored in
the prediction database, so the server's ``GET /alerts`` lists it and retries its failed URLs."""

from __future__ import annotations

from sqlalchemy import create_engine

from app.alerts import delivery
from caretflow import alerts
from caretflow.launch import wait_until
from tests.app_helpers import headers
from tests.test_app_alerts_delivery import Receiver

DETAILS = {"retrained_from": "1", "new_version": "2", "decision": "champion",
           "before": {"roc_auc": 0.8}, "after": {"roc_auc": 0.85}}


def test_a_retrain_alert_is_listed_by_get_alerts_and_its_failed_url_retried(shared_app, client,
                                                                          tmp_path):
    st = shared_app.extensions["caretflow"]
    up, down = Receiver(), Receiver()  # ``down`` listens only later
    up.start()
    try:
        body = alerts.send("retrain_finished", "churn", "2", "champion", "churn retrained.",
                           DETAILS, [up.url, down.url], key="digest:run", tries=1,
                           db_url=st.settings.PREDICTION_DB_URL)
        listed = client.get("/alerts", headers=headers()).get_json()["alerts"]
        mine = [a for a in listed if a["alert_id"] == body["alert_id"]]
        assert len(mine) == 1 and len(up.got) == 1 and up.got[0] == body
        alert = mine[0]
        assert (alert["kind"], alert["model_version"], alert["status"]) == (
            "retrain_finished", "2", "champion")
        assert alert["details"] == DETAILS and alert["created_at"] == body["created_at"]
        sent = {d["url"]: d for d in alert["deliveries"]}
        assert sent[up.url]["sent_at"] is not None and sent[down.url]["sent_at"] is None
        assert not alerts.store(st.settings.PREDICTION_DB_URL, body, {})  # one row per id

        down.start()  # the server's deliverer takes over the URL that did not answer
        deliverer = delivery.Deliverer(st.engine)  # (or the app's own, at its next tick)
        assert wait_until(lambda: deliverer.tick() or down.got, 5, 0.2)
        assert down.got == [body] and len(up.got) == 1
    finally:
        up.stop()
        if down.server is not None:
            down.stop()
    empty = f"sqlite:///{tmp_path / 'none.db'}"
    create_engine(empty).dispose()
    assert not alerts.store(empty, body, {})  # no alert tables: sent, not stored
