import os
import subprocess
import sys
import types

import pytest

from helpers import cli
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


def test_a_registry_imports_its_modules_on_first_lookup(tmp_path, monkeypatch):
    reg = Registry("thing", load=("fills_the_registry",))
    monkeypatch.setitem(sys.modules, "registry_holder", types.SimpleNamespace(reg=reg))
    (tmp_path / "fills_the_registry.py").write_text("import registry_holder\nregistry_holder.reg.register('a', 1)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "fills_the_registry", raising=False)
    assert "fills_the_registry" not in sys.modules  # nothing imported before the first lookup
    assert "a" in reg and reg.names() == ["a"] and reg.get("a") == 1
    assert "fills_the_registry" in sys.modules


def test_merbench_registries_fill_without_importing_their_packages():
    """A fresh process: no caller imports merbench.models or merbench.data to fill a registry."""
    code = ("import sys; from merbench.registry import DATASETS, EXTRACTORS, MODELS; "
            "print('tfn' in MODELS, 'synthetic' in DATASETS and 'iemocap' in DATASETS, 'mfcc' in EXTRACTORS, "
            "'torch_geometric' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.split() == ["True", "True", "True", "False"], out.stderr


def test_declared_models_match_the_imported_classes():
    """``merbench models`` lists from the files' source (models.declared): every field must be
    what importing the class gives."""
    from merbench.cli.listing import summary_of
    from merbench.models.build import model_class
    from merbench.models.declared import declared_models
    from merbench.plugins import plugin_of

    own = [e for e in MODELS.entries() if plugin_of(e.name) is None]
    declared = {d.name: d for d in declared_models()}
    assert sorted(declared) == [e.name for e in own]
    for e in own:
        cls, d = model_class(e.name), declared[e.name]
        assert (d.class_name, d.level, d.inputs, d.components, d.summary, d.tiny) == \
            (cls.__name__, str(cls.level), cls.inputs, tuple(cls.components), summary_of(e),
             bool(e.meta.get("tiny"))), e.name


def test_models_listing_imports_no_torch_and_matches_the_registry(monkeypatch):
    script = ("import sys\nfrom merbench.cli.app import app\nsys.argv = ['merbench', 'models', '--tiny']\n"
              "try:\n    app()\nexcept SystemExit:\n    pass\nprint('torch' in sys.modules, file=sys.stderr)\n")
    env = {k: v for k, v in os.environ.items() if k != "MERBENCH_PLUGINS"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         env={**env, "COLUMNS": "250"})
    assert out.stderr.strip() == "False", out.stderr  # no torch: the model files were read, not imported
    monkeypatch.delenv("MERBENCH_PLUGINS", raising=False)
    monkeypatch.setenv("COLUMNS", "250")  # the width policy of merbench.width, as in the subprocess
    from merbench.plugins import plugin_of

    assert MODELS.loaded
    listed = cli("models", "--tiny").output  # this process has the registry: it lists the imported classes
    own = [line for line in listed.splitlines() if not any(f"│ {n} " in line for n in MODELS.names() if plugin_of(n))]
    assert own == out.stdout.splitlines()
