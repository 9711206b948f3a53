"""The RL controller: a normalised policy, two implementations that agree, learning, replay."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import torch

from tgsage.spaces import StepToken, get_space
from tgsage.strategies import RLStrategy, get_strategy, run_strategy
from tgsage.strategies.controller import discover_kinds

torch.set_num_threads(1)


def _all_token_sequences(space):  # type: ignore[no-untyped-def]
    """Every token sequence of a space whose step structure does not depend on choices."""
    steps = []
    while (step := space.controller_step([StepToken((0,) * 99)] * len(steps))) is not None:
        steps.append(step)
    per_step = [
        [
            StepToken(c, ln)
            for c in itertools.product(*[range(len(h.options)) for h in s.heads])
            for ln in itertools.product([False, True], repeat=len(s.links))
        ]
        for s in steps
    ]
    return steps, list(itertools.product(*per_step))


def test_head_probabilities_sum_to_one_over_every_sequence() -> None:
    # cell space, 1 block: 2*8*2*8 block tokens x 4 output-flag tokens = 1024 sequences
    space = get_space("cell", blocks=1)
    rl = get_strategy("rl", space, seed=5, temperature=1.7)
    steps, seqs = _all_token_sequences(space)
    assert len(seqs) == 1024
    enc = [rl.controller.encode(list(zip(steps, seq, strict=True))) for seq in seqs]
    with torch.no_grad():
        chunks = [rl.controller.log_prob(enc[i : i + 256], 1.7) for i in range(0, 1024, 256)]
        logp = torch.cat(chunks)
    assert float(torch.exp(logp.double()).sum()) == pytest.approx(1.0, abs=1e-5)


def test_link_probabilities_normalise_for_fixed_heads() -> None:
    space = get_space("layer", max_layers=3)
    rl = get_strategy("rl", space, seed=2)
    layer = {
        "filters": 64,
        "kernel_h": 3,
        "kernel_w": 5,
        "stride": 1,
        "activation": "relu",
        "norm": "none",
    }
    heads = {"num_layers": 3, **{f"layer{i}/{k}": v for i in range(3) for k, v in layer.items()}}
    link_names = [
        "layer1/in/image",
        "layer1/in/layer0",
        "layer2/in/image",
        "layer2/in/layer0",
        "layer2/in/layer1",
    ]
    total = 0.0
    head_only = None
    for bits in itertools.product([False, True], repeat=5):
        params = {**heads, **dict(zip(link_names, bits, strict=True))}
        enc = rl.controller.encode(rl._walk(params, strict=True))
        with torch.no_grad():
            total += float(torch.exp(rl.controller.log_prob([enc]).double()))
            no_links = dataclasses.replace(
                enc, link_dst=enc.link_dst[:0], link_src=enc.link_src[:0], link_on=enc.link_on[:0]
            )
            head_only = float(torch.exp(rl.controller.log_prob([no_links]).double()))
    assert total == pytest.approx(head_only, rel=1e-5)


@pytest.mark.parametrize("space_name", ["layer", "cell"])
def test_numpy_sampler_and_torch_log_prob_agree(space_name: str) -> None:
    space = get_space("layer", max_layers=5) if space_name == "layer" else get_space("cell")
    rl = get_strategy("rl", space, seed=1, temperature=0.8)
    run_strategy(rl, lambda s: float(np.random.default_rng(0).random()), 10)  # 2 updates
    for seed in range(5):
        params = rl.ask(seed)
        probs = rl.probabilities(params)
        steps = rl._steps(params)
        logp = 0.0
        for step, token in steps:
            for head, c in zip(step.heads, token.choices, strict=True):
                logp += np.log(probs[head.param][c])
            for link, on in zip(step.links, token.links, strict=True):
                p = probs[link.param][0]
                logp += np.log(p if on else 1 - p)
        assert rl.log_prob(params) == pytest.approx(logp, abs=1e-4)


def test_heads_are_shared_across_steps() -> None:
    space = get_space("layer", max_layers=6)
    kinds = discover_kinds(space)
    assert kinds == {
        "num_layers": 6,
        "filters": 3,
        "kernel_h": 4,
        "kernel_w": 4,
        "stride": 2,
        "activation": 2,
        "norm": 2,
    }
    rl = get_strategy("rl", space)
    assert rl.controller.head.out_features == sum(kinds.values())
    assert rl.controller.lstm.num_layers == 2 and rl.controller.lstm.hidden_size == 32
    cell = discover_kinds(get_space("cell", blocks=4))
    assert cell["input_a"] == 5 and cell["op_b"] == 8 and cell["concat_prev"] == 2


def test_sampling_follows_the_policy_frequencies() -> None:
    space = get_space("layer", max_layers=2)
    rl = get_strategy("rl", space, seed=0, temperature=0.5)
    probs = rl.probabilities(rl.ask(0))["num_layers"]
    draws = np.array([rl.ask(s)["num_layers"] for s in range(2000)])
    assert np.mean(draws == 1) == pytest.approx(probs[0], abs=0.04)


def test_probability_of_a_rewarded_choice_rises_with_paper_settings() -> None:
    space = get_space("layer", max_layers=4)
    rl = get_strategy("rl", space, seed=0)  # lr 1e-3, beta1 0, batch 5, clip 1

    def reward(spec) -> float:  # type: ignore[no-untyped-def]
        return float(np.mean([layer.filters == 128 for layer in spec.layers]))

    probe = rl.ask(123)

    def p128() -> float:
        probs = rl.probabilities(probe)
        return float(np.mean([probs[f"layer{i}/filters"][2] for i in range(probe["num_layers"])]))

    before = p128()
    run_strategy(rl, reward, 300)
    assert rl.n_updates == 60
    after = p128()
    assert after > before + 0.05, (before, after)
    # the baseline tracks the rewards (an EMA of values in [0, 1])
    assert 0.0 < rl.baseline < 1.0


def test_failed_candidates_get_the_worst_score_so_far() -> None:
    space = get_space("layer", max_layers=3)
    rl = get_strategy("rl", space, batch_size=100)
    params = [rl.ask(s) for s in range(4)]
    rl.tell(params[0], None)
    rl.tell(params[1], 0.7)
    rl.tell(params[2], 0.4)
    rl.tell(params[3], float("nan"))
    assert [r for _, r in rl._batch] == [0.0, 0.7, 0.4, 0.4]


def test_update_happens_every_fifth_tell() -> None:
    space = get_space("cell", blocks=2)
    rl = get_strategy("rl", space, seed=0)
    before = rl.policy_state()
    for i in range(4):
        rl.tell(rl.ask(i), float(i))
    assert all(torch.equal(before[k], v) for k, v in rl.policy_state().items())
    rl.tell(rl.ask(4), 4.0)
    assert rl.n_updates == 1
    assert not all(torch.equal(before[k], v) for k, v in rl.policy_state().items())


@pytest.mark.parametrize("space_name", ["layer", "cell"])
def test_replay_rebuilds_the_same_policy_fast(space_name: str) -> None:
    import time

    space = get_space("layer", max_layers=10) if space_name == "layer" else get_space("cell")
    rng = np.random.default_rng(0)
    hist = [
        (space.spec_to_params(space.random_spec(rng)), float(rng.random())) for _ in range(1000)
    ]
    states = []
    threads = torch.get_num_threads()
    # CPU time of one thread: other processes' load does not count, and no idle intra-op
    # thread spins on a crowded machine (which inflated process_time 4x under load)
    torch.set_num_threads(1)
    try:
        for _ in range(2):
            rl: RLStrategy = get_strategy("rl", space, seed=9)  # type: ignore[assignment]
            t0 = time.process_time()
            for params, score in hist:
                rl.tell(params, score)
            elapsed = time.process_time() - t0
            states.append(rl.policy_state())
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert elapsed < 6.0  # ~1.5 s of CPU on one core; generous for CI noise


def test_device_option() -> None:
    from tgsage.errors import ConfigError

    space = get_space("layer", max_layers=2)
    assert get_strategy("rl", space, device="auto").device.type in ("cpu", "cuda")
    with pytest.raises(ConfigError, match="device"):
        get_strategy("rl", space, device="not-a-device")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_policy_matches_cpu_policy() -> None:
    space = get_space("cell", blocks=2)
    rng = np.random.default_rng(0)
    hist = [(space.spec_to_params(space.random_spec(rng)), float(rng.random())) for _ in range(50)]
    states = []
    for device in ("cpu", "cuda"):
        rl = get_strategy("rl", space, seed=4, device=device)
        rl.replay(hist)
        states.append({k: v.cpu() for k, v in rl.policy_state().items()})  # type: ignore[attr-defined]
        params = rl.ask(0)
        assert params == space.spec_to_params(space.params_to_spec(params))
    for k in states[0]:
        torch.testing.assert_close(states[0][k], states[1][k], atol=1e-4, rtol=1e-3)
