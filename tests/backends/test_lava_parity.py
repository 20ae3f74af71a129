"""Parity on real Lava: the lowered program under ``Loihi2SimCfg(select_tag="fixed_pt")`` (with
snncc's bit-identical ``DelayDense`` model, ``fast_models.sim_config``), and its fused variant.

The runtime job runs the generated ``network.py`` (lava-nc 0.10.0, Python 3.10) on three samples
of every program of ``conftest.PROGRAMS`` (each zoo family, the committed checkpoints): every
population's spikes, per neuron and per step, must equal the ``loihi`` reference
interpreter's after the pipeline latency is removed, and the host readout of Lava's spikes must
give the reference's outputs and predictions exactly. The emitted build directory is checked to
be byte-identical across emissions and to run from its own ``run.py``. Skipped without the
runtime environment (failing under ``CI=true``), like every ``runtime`` test.
"""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest

from snncc.backends.lava.emit import emit
from snncc.backends.lava.runner import run_on_lava
from snncc.backends.lower import host
from snncc.backends.lower.simulate import simulate, windows


def _first_mismatch(name: str, got: np.ndarray, want: np.ndarray) -> str:
    t, b, *i = np.argwhere(got != want)[0]
    return f"{name}: Lava and the reference first differ at step {t}, sample {b}, neuron {i}"


@pytest.mark.runtime
def test_lava_spikes_equal_the_reference(program) -> None:
    """Every family (tests/backends/conftest.py PROGRAMS) on Lava: per neuron, per step."""
    p = program
    a_in, batch = host.encode(p.graph, p.spec, p.inputs)
    lava = run_on_lava(p.spec, a_in, batch, timeout=300)
    assert lava.info["lava_nc"] == "0.10.0" and lava.info["batch"] == batch == 3
    rates = {}
    for pop in p.spec.populations:
        want = p.reference_spikes(pop.name)
        np.testing.assert_array_equal(lava.counts[pop.name], want.sum(axis=0), err_msg=pop.name)
        got = lava.spikes[pop.name]
        assert np.array_equal(got, want), _first_mismatch(pop.name, got, want)
        rates[pop.name] = float(want.mean())
    p.assert_lively(rates)
    out = host.readout(p.graph, p.spec, lava.spikes, p.inputs)
    for name, want in p.reference.outputs.items():
        np.testing.assert_array_equal(out[name], want)
        np.testing.assert_array_equal(out[name].argmax(-1), want.argmax(-1))


@pytest.mark.runtime
@pytest.mark.parametrize("name", ["digits", "ge2mst"])
def test_fused_program_equals_the_reference(programs, name: str) -> None:
    """The whole program as one SpecProgram process (``fused``): the same spikes per neuron and
    per step (GE2MST: programmable neurons with graded payloads)."""
    p = programs(name)
    a_in, batch = host.encode(p.graph, p.spec, p.inputs)
    lava = run_on_lava(p.spec, a_in, batch, timeout=300, fused=True)
    assert lava.info["fused"] and lava.info["processes"] == 3
    for pop in p.spec.populations:
        got, want = lava.spikes[pop.name], p.reference_spikes(pop.name)
        assert want.any(), pop.name
        assert np.array_equal(got, want), _first_mismatch(pop.name, got, want)


def test_emitted_files_are_byte_identical(digits_program, tmp_path: Path) -> None:
    first = emit(digits_program.spec, tmp_path / "a", label="digits")
    second = emit(digits_program.spec, tmp_path / "b", label="digits")
    assert [f.name for f in first] == ["network.py", "run.py", "weights.npz", "spec.json"]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    source = first[0].read_text()
    assert "LIFReset(\n        shape=(1024,)" in source and "DelayDense(" in source
    assert "SpecSynapse(" in source and "cfg = run_cfg or sim_config()" in source
    compile(source, "network.py", "exec")  # valid Python (it imports Lava, so not run here)


@pytest.mark.runtime
def test_emitted_run_py_reproduces_the_executor(
    digits_program, runtime_python: str, tmp_path: Path
) -> None:
    p = digits_program
    build = tmp_path / "build"
    emit(p.spec, build)
    one = {k: v[:1] for k, v in p.inputs.items()}  # one sample keeps this run short
    a_in, batch = host.encode(p.graph, p.spec, one)
    np.savez(tmp_path / "x.npz", **a_in)
    subprocess.run(
        [runtime_python, "run.py", "--input", str(tmp_path / "x.npz"), "--out", "spikes.npz"],
        cwd=build, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    want = windows(p.spec, simulate(p.spec, a_in, batch), batch)
    with np.load(build / "spikes.npz") as got:
        assert sorted(got.files) == sorted(want)
        for name, w in want.items():
            np.testing.assert_array_equal(got[name], w, err_msg=name)


@pytest.mark.runtime
def test_vectorised_conv_equals_lavas_own_conv(runtime_python: str) -> None:
    script = textwrap.dedent(
        """
        import numpy as np
        from lava.proc.conv import utils
        from snncc.backends.lower.kernels import conv_lava, signed_wrap
        rng = np.random.default_rng(5)
        for stride, pad, dil, groups in [((1, 1), (1, 1), (1, 1), 1), ((2, 1), (0, 2), (1, 2), 2),
                                         ((1, 2), (2, 1), (2, 1), 4)]:
            x = (rng.random((4, 7, 9)) < 0.5).astype(np.int32)
            k = rng.integers(-3000, 3000, (8, 2, 3, 4 // groups)).astype(np.int32)
            want = signed_wrap(utils.conv(x.transpose(2, 1, 0), k, k.shape[1:3], stride, pad, dil,
                                          groups)).transpose(2, 1, 0)
            got = conv_lava(x[None], k, stride, pad, dil, groups)[0]
            assert np.array_equal(got, want), (stride, pad, dil, groups)
        print("ok")
        """
    )
    done = subprocess.run(
        [runtime_python, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


@pytest.mark.runtime
def test_lava_sew_projections_with_a_negative_exponent(sew_program) -> None:
    """Lava's Dense floors each projection's sum: the reference models exactly that."""
    p = sew_program
    a_in, batch = host.encode(p.graph, p.spec, p.inputs)
    lava = run_on_lava(p.spec, a_in, batch, timeout=300)
    for pop in p.spec.populations:
        np.testing.assert_array_equal(lava.spikes[pop.name], p.reference_spikes(pop.name))
    out = host.readout(p.graph, p.spec, lava.spikes, p.inputs)
    np.testing.assert_array_equal(out["rate"], p.reference.outputs["rate"])


@pytest.mark.runtime
def test_lava_relay_chains(relay_program) -> None:
    """Relay populations (OR neurons, one unit input) carry a skip past the delay limit."""
    p = relay_program
    a_in, batch = host.encode(p.graph, p.spec, p.inputs)
    lava = run_on_lava(p.spec, a_in, batch, timeout=300)
    assert any(q.role == "relay" for q in p.spec.populations)
    for pop in p.spec.populations:
        np.testing.assert_array_equal(lava.spikes[pop.name], p.reference_spikes(pop.name))
    out = host.readout(p.graph, p.spec, lava.spikes, p.inputs)
    np.testing.assert_array_equal(out["rate"], p.reference.outputs["rate"])


@pytest.mark.runtime
def test_lava_and_expanded_attention(attention_programs) -> None:
    """``--attention and`` on Lava: the small spikingformer's spike products as AND neurons.

    Every graph population equals the reference per neuron and step; an AND population (no
    node value of its own) fires, per step and sample, exactly as many neurons as the
    reference's product counts sum to, and per neuron as the numpy executor's (checked against
    the reference the same way in test_lower_attention).
    """
    p = attention_programs["and"]
    a_in, batch = host.encode(p.graph, p.spec, p.inputs)
    lava = run_on_lava(p.spec, a_in, batch, timeout=600)
    assert lava.info["batch"] == batch == 3
    executor = windows(p.spec, simulate(p.spec, a_in, batch), batch)
    rates, ands = {}, 0
    for pop in p.spec.populations:
        got = lava.spikes[pop.name]
        value = p.reference.values[pop.name]
        if not pop.checked:
            ands += 1
            fired = got.reshape(*got.shape[:2], -1).sum(axis=-1)
            np.testing.assert_array_equal(
                fired, value.reshape(*value.shape[:2], -1).sum(axis=-1), err_msg=pop.name
            )
            np.testing.assert_array_equal(got, executor[pop.name], err_msg=pop.name)
            assert got.any(), pop.name
            continue
        want = p.reference_spikes(pop.name)
        np.testing.assert_array_equal(lava.counts[pop.name], want.sum(axis=0), err_msg=pop.name)
        assert np.array_equal(got, want), _first_mismatch(pop.name, got, want)
        rates[pop.name] = float(want.mean())
    assert ands == 2  # q·kᵀ and (q·kᵀ)·v
    p.assert_lively(rates)
    out = host.readout(p.graph, p.spec, lava.spikes, p.inputs)
    for name, want in p.reference.outputs.items():
        np.testing.assert_array_equal(out[name], want)
