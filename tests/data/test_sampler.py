import pytest
import torch

from mono.data.sampler import ResumableRandomSampler, derive_seed


def test_order_is_a_function_of_seed_and_epoch():
    a = ResumableRandomSampler(50, seed=1)
    b = ResumableRandomSampler(50, seed=1)
    torch.manual_seed(0)
    first = list(a)
    torch.manual_seed(99)  # the global RNG must not matter
    assert list(b) == first
    assert sorted(first) == list(range(50))
    a.set_epoch(1)
    assert list(a) != first and sorted(a) == list(range(50))
    assert list(ResumableRandomSampler(50, seed=2)) != first


def test_no_shuffle_keeps_file_order():
    assert list(ResumableRandomSampler(5, shuffle=False)) == [0, 1, 2, 3, 4]


def test_neighbouring_seeds_and_epochs_do_not_alias():
    # seed + epoch mixing would make (0, 1) and (1, 0) identical.
    assert derive_seed(0, 1) != derive_seed(1, 0)


def test_skip_resumes_mid_epoch_once():
    sampler = ResumableRandomSampler(10, seed=0)
    sampler.set_epoch(3)
    full = list(sampler)
    sampler.skip(4)
    sampler.set_epoch(3)  # Lightning sets the same epoch again on resume: the skip survives
    assert list(sampler) == full[4:]
    assert list(sampler) == full  # a finished pass consumed the skip
    sampler.skip(4)
    sampler.set_epoch(4)  # a new epoch drops it
    assert len(list(sampler)) == 10
    assert len(sampler) == 10


def test_state_dict_round_trip():
    sampler = ResumableRandomSampler(10, seed=5)
    sampler.set_epoch(2)
    iterator = iter(sampler)
    taken = [next(iterator) for _ in range(3)]
    state = sampler.state_dict()
    assert state["consumed"] == 3 and state["epoch"] == 2
    resumed = ResumableRandomSampler(10, seed=0)  # seed and epoch come from the state
    resumed.load_state_dict(state)
    reference = ResumableRandomSampler(10, seed=5)
    reference.set_epoch(2)
    assert taken + list(resumed) == list(reference)
    assert sampler.state_dict(consumed=6)["consumed"] == 6


def test_state_from_another_dataset_is_refused():
    state = ResumableRandomSampler(10).state_dict()
    with pytest.raises(ValueError, match="dataset_len=10"):
        ResumableRandomSampler(12).load_state_dict(state)


def test_replicas_shard_a_padded_permutation():
    shards = [list(ResumableRandomSampler(10, seed=0, num_replicas=3, rank=r)) for r in range(3)]
    assert [len(s) for s in shards] == [4, 4, 4]
    together = sorted(i for s in shards for i in s)
    assert set(together) == set(range(10)) and len(together) == 12  # 2 repeated as padding
    dropped = [
        list(ResumableRandomSampler(10, num_replicas=3, rank=r, drop_last=True)) for r in range(3)
    ]
    assert [len(s) for s in dropped] == [3, 3, 3]
    assert len({i for s in dropped for i in s}) == 9


def test_with_epoch_yields_pairs():
    sampler = ResumableRandomSampler(4, shuffle=False, with_epoch=True)
    sampler.set_epoch(7)
    assert list(sampler) == [(7, 0), (7, 1), (7, 2), (7, 3)]


def test_bad_arguments():
    with pytest.raises(ValueError, match="rank=2"):
        ResumableRandomSampler(10, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="dataset_len=0"):
        ResumableRandomSampler(0)
