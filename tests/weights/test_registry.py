"""The named weights registry: resolution, sha256 checks, listing."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from sepconv import weights as registry
from sepconv.errors import WeightsError


def test_no_default_model_says_so_clearly(monkeypatch):
    monkeypatch.setattr(registry, "DEFAULT_WEIGHTS", None)
    with pytest.raises(WeightsError, match="no trained weights ship"):
        registry.resolve_weights(None)


def test_existing_path_is_used_directly(tmp_path):
    path = tmp_path / "anything.pt"
    path.write_bytes(b"x")
    assert registry.resolve_weights(str(path)) == (path, None)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(WeightsError, match="authors-l1"):
        registry.resolve_weights("no-such-model")


def test_authors_name_resolves_from_the_weights_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(registry.WEIGHTS_DIR_ENV, str(tmp_path))
    with pytest.raises(WeightsError, match="not installed"):
        registry.resolve_weights("authors-l1")
    (tmp_path / "network-l1.pytorch").write_bytes(b"weights")
    path, spec = registry.resolve_weights("authors-l1")
    assert path == tmp_path / "network-l1.pytorch" and spec.name == "authors-l1"
    listed = {row.spec.name: row.installed for row in registry.list_weights()}
    expected = {
        "sepconv-flow": True,
        "sepconv-l1": True,
        "sepconv-motion": True,
        "authors-l1": True,
        "authors-lf": False,
    }
    assert listed == expected


def test_sha256_is_checked_before_use(tmp_path, monkeypatch):
    monkeypatch.setenv(registry.WEIGHTS_DIR_ENV, str(tmp_path))
    content = b"trusted weights"
    (tmp_path / "network-l1.pytorch").write_bytes(content)
    good = replace(registry.get_spec("authors-l1"), sha256=hashlib.sha256(content).hexdigest())
    monkeypatch.setattr(registry, "REGISTRY", (good,))
    assert registry.resolve_weights("authors-l1")[0].read_bytes() == content
    (tmp_path / "network-l1.pytorch").write_bytes(b"tampered weights")
    with pytest.raises(WeightsError, match="does not match the registry's sha256"):
        registry.resolve_weights("authors-l1")


def test_bundled_models_match_their_registry_entries():
    from sepconv.models.checkpoint import load_weights

    bundled = [spec for spec in registry.REGISTRY if spec.source == "bundled"]
    assert registry.DEFAULT_WEIGHTS in {spec.name for spec in bundled}
    for spec in bundled:
        path, resolved = registry.resolve_weights(spec.name)  # checks the sha256
        assert resolved == spec and path.stat().st_size < 50 * 2**20
        assert load_weights(path).model.config == spec.config


def test_default_model_resolves_and_a_missing_file_says_so(tmp_path, monkeypatch):
    path, spec = registry.resolve_weights(None)
    assert spec is not None and spec.name == registry.DEFAULT_WEIGHTS and path.is_file()
    monkeypatch.setattr(registry, "bundled_dir", lambda: tmp_path)
    with pytest.raises(WeightsError, match="not installed"):
        registry.resolve_weights(None)
