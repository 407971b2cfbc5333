"""Huge pages for large CPU tensors are requested only where the kernel grants them, never over a user's choice;
deterministic mode's NaN fill of new tensors is switched off."""

from __future__ import annotations

import pytest

from pxrdbench.run import host_memory


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("always [madvise] never\n", True),
        ("[always] madvise never\n", True),
        ("always madvise [never]\n", False),
    ],
)
def test_huge_pages_follow_the_kernel_setting(tmp_path, monkeypatch, setting: str, expected: bool) -> None:
    path = tmp_path / "enabled"
    path.write_text(setting)
    monkeypatch.setattr(host_memory, "THP_SETTING", path)
    monkeypatch.setattr(host_memory.sys, "platform", "linux")
    monkeypatch.delenv(host_memory.ENV, raising=False)
    assert host_memory.use_huge_pages_for_tensors() is expected
    assert (host_memory.os.environ.get(host_memory.ENV) == "1") is expected


def test_a_users_setting_is_kept(tmp_path, monkeypatch) -> None:
    path = tmp_path / "enabled"
    path.write_text("always [madvise] never\n")
    monkeypatch.setattr(host_memory, "THP_SETTING", path)
    monkeypatch.setattr(host_memory.sys, "platform", "linux")
    monkeypatch.setenv(host_memory.ENV, "0")
    assert host_memory.use_huge_pages_for_tensors() is False
    assert host_memory.os.environ[host_memory.ENV] == "0"


def test_missing_setting_file_means_no_huge_pages(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(host_memory, "THP_SETTING", tmp_path / "absent")
    monkeypatch.delenv(host_memory.ENV, raising=False)
    assert host_memory.use_huge_pages_for_tensors() is False
    assert host_memory.ENV not in host_memory.os.environ


def test_deterministic_mode_keeps_its_algorithms_but_stops_the_nan_fill() -> None:
    import torch.utils.deterministic

    before = torch.are_deterministic_algorithms_enabled(), torch.utils.deterministic.fill_uninitialized_memory
    try:
        torch.use_deterministic_algorithms(True)
        host_memory.skip_filling_new_tensors()
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.utils.deterministic.fill_uninitialized_memory is False
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.utils.deterministic.fill_uninitialized_memory = before[1]
