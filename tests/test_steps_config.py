from caretflow.config import compose, flatten, split_overrides


def test_split_overrides_splits_one_quoted_token():
    assert split_overrides(["profile=quick model.params.max_depth=6"]) == [
        "profile=quick",
        "model.params.max_depth=6",
    ]


def test_split_overrides_keeps_a_single_value_with_spaces():
    assert split_overrides(["model.params.hidden_layer_sizes=[64, 32]"]) == [
        "model.params.hidden_layer_sizes=[64, 32]"
    ]


def test_split_overrides_drops_empty_token():
    assert split_overrides(["", "dataset=churn"]) == ["dataset=churn"]


def test_default_config_is_churn_random_forest_full():
    cfg = compose()
    assert cfg.dataset.name == "churn"
    assert cfg.dataset.task == "classification"
    assert cfg.model.name == "random_forest"
    assert cfg.profile.name == "full"
    assert cfg.version_name == "random_forest"


def test_version_files_override_model_and_name():
    cfg = compose(["version=v3_rf_tuned"])
    assert cfg.version_name == "v3_rf_tuned"
    assert cfg.model.name == "random_forest"
    assert cfg.model.params.n_estimators == 200
    assert cfg.model.params.max_depth == 10
    assert cfg.model.params.min_samples_split == 5
    v4 = compose(["version=v4_xgboost"])
    assert v4.model.name == "xgboost"
    assert v4.model.search.method == "grid"
    assert list(v4.model.search.space.max_depth) == [3, 4, 5]
    assert compose(["version=v1_auto_select"]).model.name == "auto"


def test_every_model_family_has_both_tasks():
    for name in [
        "random_forest",
        "xgboost",
        "knn",
        "decision_tree",
        "svm",
        "logistic_regression",
        "naive_bayes",
        "mlp",
    ]:
        cfg = compose([f"model={name}"])
        assert set(cfg.model.estimator) == {"classification", "regression"}, name


def test_ratings_and_reframed_churn():
    assert compose(["dataset=ratings"]).dataset.task == "regression"
    assert compose(["dataset.task=regression"]).dataset.primary_metric.regression == "rmse"


def test_flatten():
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": []}) == {"a.b": 1, "a.c.d": 2, "e": []}


def test_registered_name_defaults_to_the_data_set_and_is_the_contracts_dataset():
    from caretflow.modelling.build import model_contract

    assert compose(["dataset=ratings"]).registry.name == "ratings"
    cfg = compose(["dataset.task=regression", "registry.name=churn_regression"])
    contract = model_contract(cfg)
    assert (contract["dataset"], contract["task"]) == ("churn_regression", "regression")
    assert contract["schema_digest"] != model_contract(compose())["schema_digest"]
