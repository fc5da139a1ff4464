import pytest

from merbench.errors import MerbenchError
from merbench.registry import MODELS, Registry


def test_duplicate_name_is_an_error():
    reg = Registry("thing")
    reg.register("a", 1)
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("a", 2)


def test_miss_names_the_closest_and_the_valid_names():
    reg = Registry("thing")
    reg.register("dialoguernn", 1)
    reg.register("tfn", 2)
    with pytest.raises(MerbenchError, match=r"unknown thing 'dialogurnn' \(did you mean 'dialoguernn'\?\); valid: dialoguernn, tfn"):
        reg.get("dialogurnn")


def test_models_registry_lists_real_entries():
    assert "tfn" in MODELS and "mlp" in MODELS
    assert MODELS.names() == sorted(MODELS.names())
