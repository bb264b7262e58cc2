"""The answer and body models that routes declare in ``@documented`` (pydantic)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class ErrorOut(BaseModel):
    """Every error answer."""

    error: str
    details: list


class IntervalOut(BaseModel):
    """Regression interval."""

    lower: float
    upper: float
    level: float


class PredictionOut(BaseModel):
    """One answer of /predict."""

    prediction: float | int
    prediction_id: str
    model_version: str
    version_name: str
    arm: Literal["default", "champion", "challenger"]
    probability: float | None = None
    threshold: float | None = None
    interval: IntervalOut | None = None
    cold_start: bool | None = Field(
        None, description="recommender models only (the contract names user and item "
        "columns): true when the user or the item was not in the training split, so the "
        "answer comes from side features, priors or biases; absent for other models")


class BatchOut(BaseModel):
    """A batch answer of /predict."""

    predictions: list[PredictionOut]


class FeedbackOut(BaseModel):
    """Answer of /feedback."""

    recorded: int
    feedback: list[dict]


PredictAnswer = PredictionOut | BatchOut


def predict_body(st):
    """/predict: one flat record or a batch, per the serving contract."""
    return st.requests.single | st.requests.batch


def feedback_body(st):
    """/feedback: one item or a list of them."""
    return st.requests.feedback | list[st.requests.feedback]


def recommend_body(st):
    """/recommend: for recommender contracts only (None: any JSON object)."""
    if not st.contract.get("recommender"):
        return None
    from app.routes.recommend import request_model  # that route owns its body model

    return request_model(st)
