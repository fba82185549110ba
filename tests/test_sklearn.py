"""jitbp.sklearn: estimator checks, pickling, clone, Pipeline, GridSearchCV with string labels."""
import pickle

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="jitbp.sklearn needs scikit-learn (pip install jitbp[sklearn])")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import jitbp  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
from jitbp.sklearn import MLPClassifier, MLPRegressor, NetworkClassifier, NetworkRegressor  # noqa: E402


@pytest.fixture(autouse=True)
def _interpreted(monkeypatch):
    monkeypatch.setenv("JITBP_CAPTURE", "never")  # these tiny fits would spend their time compiling


class TwoLayer:
    """A build function for the generic estimators (module level: it pickles; a fixed repr
    keeps the estimator checks' test ids the same in every pytest-xdist worker)."""

    def __call__(self, n_features, n_outputs, hidden=16, seed=0):
        return jitbp.Sequential(jitbp.layer("dense", n_features, hidden, seed=seed), jitbp.layer("tanh"),
                                jitbp.layer("dense", hidden, n_outputs, seed=seed + 1))

    def __repr__(self):
        return "two_layer"


two_layer = TwoLayer()


def expected_failed_checks(estimator):
    # Integer weights equal repeated samples only for a full-batch deterministic fit; these
    # train on shuffled mini-batches (sample_weight reweights the loss within each batch),
    # so a repeated sample lands in other batches than its weight would and the fits differ.
    return {"check_sample_weight_equivalence_on_dense_data":
            "mini-batch SGD: weighting a sample is not the same as repeating it in other batches"}


# Small but real settings: check_classifiers_train / check_regressors_train demand good
# scores, so the learning rate is raised to reach them in few epochs.
CHECKED = [
    MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.02, max_iter=40, n_iter_no_change=40),
    MLPRegressor(hidden_layer_sizes=(16,), learning_rate_init=0.02, max_iter=60, n_iter_no_change=60),
    # The generic estimators share all fit/predict code with the MLPs but the build step:
    # one of them is enough to check it (NetworkRegressor is covered below).
    NetworkClassifier(two_layer, {"hidden": 8}, learning_rate_init=0.02, max_iter=40, n_iter_no_change=40),
]


@parametrize_with_checks(CHECKED, expected_failed_checks=expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600] / 16.0, y[:600]


def test_string_labels_1_to_10_pickle_and_clone(digits):
    X, y = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    for labels in (names[y], y + 1):
        clf = MLPClassifier((32,), max_iter=15, random_state=0, learning_rate_init=0.01).fit(X, labels)
        assert set(clf.classes_) == set(labels) and clf.predict(X[:5]).dtype == labels.dtype
        assert clf.score(X, labels) > 0.9
        back = pickle.loads(pickle.dumps(clf))
        np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
        fresh = clone(clf)
        assert fresh.get_params() == clf.get_params() and not hasattr(fresh, "net_")
        # the optimizer's state travels too: one more epoch matches on both
        clf.partial_fit(X, labels)
        back.partial_fit(X, labels)
        np.testing.assert_allclose(back.predict_proba(X), clf.predict_proba(X))


def test_partial_fit_and_warm_start(digits):
    X, y = digits
    clf = MLPClassifier((16,), random_state=0, learning_rate_init=0.01)
    clf.partial_fit(X[:100], y[:100], classes=np.arange(10))
    assert clf.n_iter_ == 1 and list(clf.classes_) == list(range(10))
    clf.partial_fit(X[100:], y[100:])
    assert clf.n_iter_ == 2 and len(clf.loss_curve_) == 2
    with pytest.raises(ValueError, match="not in classes_"):
        MLPClassifier((4,)).partial_fit(X[:20], y[:20], classes=[0, 1]).partial_fit(X[:20], y[:20])
    warm = MLPClassifier((16,), max_iter=3, warm_start=True, random_state=0, n_iter_no_change=3).fit(X, y)
    net = warm.net_
    warm.fit(X, y)
    assert warm.net_ is net and warm.n_iter_ == 6


def test_early_stopping_keeps_the_best_validation_score(digits):
    X, y = digits
    clf = MLPClassifier((32,), early_stopping=True, n_iter_no_change=3, max_iter=100, random_state=0,
                        learning_rate_init=0.05).fit(X, y)
    assert clf.n_iter_ < 100 and clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.history_.best_epoch is not None


def test_pipeline_gridsearch_string_labels_and_cross_val_score(digits):
    X, y = digits
    labels = np.array([f"digit {k}" for k in range(10)])[y]
    pipe = make_pipeline(StandardScaler(), MLPClassifier(max_iter=10, random_state=0, learning_rate_init=0.01))
    search = GridSearchCV(pipe, {"mlpclassifier__hidden_layer_sizes": [(8,), (32,)]}, cv=2, n_jobs=2)
    search.fit(X, labels)
    assert search.best_params_ == {"mlpclassifier__hidden_layer_sizes": (32,)}
    assert search.score(X, labels) > 0.9 and search.predict(X[:3]).dtype == labels.dtype
    scores = cross_val_score(NetworkClassifier(two_layer, max_iter=20, random_state=0, learning_rate_init=0.03),
                             X, y, cv=3)
    assert scores.min() > 0.8


def test_regressor_shapes_and_bad_build():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    Y = np.c_[X.sum(1), X[:, 0] - X[:, 1]]
    reg = MLPRegressor((16,), max_iter=200, learning_rate_init=0.01, random_state=0).fit(X, Y)
    assert reg.predict(X).shape == (80, 2) and reg.score(X, Y) > 0.9
    assert MLPRegressor((4,), max_iter=2).fit(X, Y[:, 0]).predict(X).shape == (80,)
    assert [c.shape for c in reg.coefs_] == [(3, 16), (16, 2)]
    with pytest.raises(ValueError, match="lbfgs"):
        MLPRegressor(solver="lbfgs").fit(X, Y)
    generic = NetworkRegressor(two_layer, {"hidden": 16}, max_iter=200, learning_rate_init=0.02,
                               random_state=0).fit(X, Y)
    assert generic.score(X, Y) > 0.9
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(generic)).predict(X), generic.predict(X))
    with pytest.raises(ValueError, match="3 features to 2 outputs"):
        NetworkRegressor(lambda n_in, n_out: two_layer(n_in, 5)).fit(X, Y)
