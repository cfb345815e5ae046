"""Device selection: CPU fallback, clear error without CUDA, device-independent random draws."""

import pytest
import torch

from vpd_lite.method.devices import autocast, draw_uniform, resolve_device


def test_auto_picks_cuda_only_when_available():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_asking_for_cuda_without_it_is_a_clear_error():
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        resolve_device("cuda")


def test_cuda_without_it_is_a_user_error_that_says_what_to_use(monkeypatch):
    from vpd_lite.errors import UserError
    from vpd_lite.method.devices import DeviceUnavailableError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceUnavailableError, match="CUDA is not available.*use cpu or auto") as exc:
        resolve_device("cuda:0")
    assert isinstance(exc.value, UserError) and isinstance(exc.value, RuntimeError)
    assert resolve_device("auto") == torch.device("cpu")


def test_autocast_is_a_no_op_on_cpu():
    with autocast(torch.device("cpu")):
        y = torch.ones(2, 2) @ torch.ones(2, 2)
    assert y.dtype == torch.float32


def test_draws_depend_only_on_the_generator():
    a = draw_uniform((3, 4), torch.Generator().manual_seed(5), torch.device("cpu"))
    b = draw_uniform((3, 4), torch.Generator().manual_seed(5), None)
    torch.testing.assert_close(a, b)
    assert a.min() >= 0 and a.max() < 1


def test_torch_threads_sets_and_restores_also_on_error():
    from vpd_lite.method.devices import torch_threads

    before = torch.get_num_threads()
    other = 2 if before == 1 else 1
    with torch_threads(other):
        assert torch.get_num_threads() == other
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError):
        with torch_threads(other):
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before
