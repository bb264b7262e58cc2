"""The prediction log as the source of an MLflow dataset (a retrain snapshot's lineage)."""

from __future__ import annotations

from typing import Any

from mlflow.data.dataset_source import DatasetSource

from caretflow.retrain.feedback import labelled_records, safe_url


class PredictionLogSource(DatasetSource):
    """Labelled records of one model in a window of a prediction database.

    Args:
        url: the database URL (stored without its password).
        model: registered model name.
        window_hours: the window's length.
        until: the window's end (epoch seconds).
    """

    def __init__(self, url: str, model: str, window_hours: float, until: float):
        self.url, self.model = safe_url(url), model
        self.window_hours, self.until = float(window_hours), float(until)

    @staticmethod
    def _get_source_type() -> str:
        return "prediction_log"

    def load(self) -> Any:
        """The labelled records again (the log may have been purged since)."""
        return labelled_records(self.url, self.model, self.window_hours, now=self.until)

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        return False

    @classmethod
    def _resolve(cls, raw_source: Any) -> PredictionLogSource:
        raise NotImplementedError("build a PredictionLogSource explicitly")

    def to_dict(self) -> dict[str, Any]:
        """The source as logged: URL, model and window."""
        return {"url": self.url, "model": self.model, "window_hours": self.window_hours,
                "since": self.until - self.window_hours * 3600.0, "until": self.until}

    @classmethod
    def from_dict(cls, source_dict: dict[Any, Any]) -> PredictionLogSource:
        """The source back from ``to_dict``."""
        return cls(source_dict["url"], source_dict["model"], source_dict["window_hours"],
                   source_dict["until"])
