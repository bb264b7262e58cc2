"""The fastest correct path through a logged pipeline.

The pipeline's transforms run as logged; its final estimator answers through a fast form
(``members``): the compiled random forest (``forest``); scikit-learn gradient boosting,
LightGBM and XGBoost walked by the same compiled loop (``trees``; else their own stages,
booster or ``inplace_predict``); a dot product for linear models; and soft-voting blends
of those, member by member. ``accelerate`` uses it only after it reproduced the pipeline's
own output on probe rows (``pipeline``); a large batch is split into row chunks across
``PREDICT_THREADS``.
"""

from caretflow.fastpath.forest import CompiledForest, compiled_walk, exact_float32
from caretflow.fastpath.pipeline import FastPipeline, accelerate, probe_columns

__all__ = ["CompiledForest", "FastPipeline", "accelerate", "compiled_walk", "exact_float32",
           "probe_columns"]
