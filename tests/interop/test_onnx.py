"""ONNX ANN -> ExpG-IF SNN (issue 13, deliverable 3): lossless to the K-bit quantized ANN.

"Lossless" is checked bit for bit: on test inputs the SNN's outputs (float64) equal the quantized
ANN's, and every ExpG-IF layer's events, summed over its group, give exactly the ANN's integer
codes. The quantized ANN is evaluated by :func:`snncc.interop.ann2snn.ann_forward` with the
reference interpreter's own kernels, independently of the SNN graph.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from snncc import data
from snncc.cli import main
from snncc.diagnostics import SnnccError
from snncc.interop.ann2snn import ann_forward, convert
from snncc.interop.onnx_read import read_onnx
from snncc.ir import ops as O
from snncc.passes.manager import run_pipeline
from snncc.passes.pipeline import FRONT_PIPELINE
from snncc.reference import run


def _init(name: str, a: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(a, np.float32), name)


def _hand_onnx(tmp_path: Path) -> Path:
    """Conv -> BatchNormalization -> Relu -> GlobalAveragePool -> Reshape -> MatMul + Add ->
    Clip(0, 6) via Constant inputs -> Gemm(transB) -> output."""
    rng = np.random.default_rng(0)
    c = 6
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node(
            "BatchNormalization", ["c1", "g", "beta", "mu", "var"], ["bn"], epsilon=1e-5, name="bn"
        ),  # fmt: skip
        helper.make_node("Relu", ["bn"], ["r1"], name="relu1"),
        helper.make_node("GlobalAveragePool", ["r1"], ["gap"], name="gap"),
        helper.make_node("Reshape", ["gap", "shape"], ["flat"], name="reshape"),
        helper.make_node("MatMul", ["flat", "m"], ["mm"], name="matmul"),
        helper.make_node("Add", ["mm", "mb"], ["fc"], name="bias"),
        helper.make_node("Constant", [], ["lo"], value=_init("lo", np.array(0.0))),
        helper.make_node("Constant", [], ["hi"], value=_init("hi", np.array(6.0))),
        helper.make_node("Clip", ["fc", "lo", "hi"], ["r2"], name="clip"),
        helper.make_node("Gemm", ["r2", "w3", "b3"], ["y"], transB=1, name="head"),
    ]
    inits = [
        _init("w1", rng.normal(0, 0.5, (c, 1, 3, 3))), _init("b1", rng.normal(0, 0.1, c)),
        _init("g", rng.uniform(0.5, 1.5, c)), _init("beta", rng.normal(0, 0.1, c)),
        _init("mu", rng.normal(0, 0.1, c)), _init("var", rng.uniform(0.5, 2.0, c)),
        numpy_helper.from_array(np.array([-1, c], np.int64), "shape"),
        _init("m", rng.normal(0, 0.5, (c, 16))), _init("mb", rng.normal(0, 0.1, 16)),
        _init("w3", rng.normal(0, 0.5, (10, 16))), _init("b3", rng.normal(0, 0.1, 10)),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes, "hand", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits,
    )  # fmt: skip
    path = tmp_path / "hand.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _lossless(ann, g, conv, x: np.ndarray) -> None:
    want, codes = ann_forward(ann, x, thetas=conv.thetas, bits=conv.bits)
    res = run(g, {g.inputs[0]: x}, record="all")
    np.testing.assert_array_equal(res.outputs[g.outputs[0]], want)
    K = conv.bits
    for j, theta in conv.thetas.items():
        level = conv.levels[j]
        group = res.values[j][(level - 1) * K : level * K].sum(axis=0)
        np.testing.assert_array_equal(group * (2.0**K / theta), codes[j])
        assert codes[j].max() > 0  # the layer carries information


@pytest.mark.parametrize("bits", [2, 4])
def test_torch_exported_cnn_is_lossless(rescnn_onnx, bits):
    ann = read_onnx(rescnn_onnx)
    assert [a.onnx_op for a in ann.nodes.values()][1:] == [
        "Conv", "Relu", "Conv", "Relu", "Add", "AveragePool", "Flatten", "Gemm", "Clip", "Gemm",
    ]  # fmt: skip
    x_cal, _ = data.digits("train", size=8)
    x_test, _ = data.digits("test", size=8)
    g, conv = convert(ann, x_cal[:128], bits=bits, timesteps=3 * bits + 1)
    assert all(np.log2(t).is_integer() for t in conv.thetas.values())
    assert conv.thetas["Clip"] <= 4.0  # Clip(0, 6): theta at most 2^floor(log2 6)
    assert sorted(conv.levels.values()) == [1, 2, 3] and conv.min_timesteps == 3 * bits + 1
    neurons = {n: g.op(n) for n in g.nodes() if isinstance(g.op(n), O.ExpGIF)}
    assert sorted(neurons) == sorted([*conv.thetas, "clock"])  # the layers and the bias clock
    assert {j: neurons[j].start for j in conv.thetas} == {
        j: (level - 1) * bits for j, level in conv.levels.items()
    }  # fmt: skip
    assert not any(isinstance(g.op(n), (O.Mul, O.Delay)) for n in g.nodes())  # no gate, no window
    _lossless(ann, g, conv, x_test[:64].astype(np.float64))
    # the front passes snncc runs before every command leave the arithmetic unchanged
    front, _ = run_pipeline(g, FRONT_PIPELINE)
    x = x_test[:16].astype(np.float64)
    np.testing.assert_array_equal(
        run(front, {g.inputs[0]: x}).outputs[front.outputs[0]],
        run(g, {g.inputs[0]: x}).outputs[g.outputs[0]],
    )


def test_batchnorm_matmul_bias_pool_reshape_clip_are_read_and_lossless(tmp_path):
    ann = read_onnx(_hand_onnx(tmp_path))
    kinds = [(a.onnx_op, type(a.op).__name__ if a.op else "act") for a in ann.nodes.values()]
    assert kinds[1:] == [
        ("Conv", "Conv2d"),
        ("Relu", "act"),
        ("GlobalAveragePool", "Mean"),
        ("Reshape", "Reshape"),
        ("MatMul", "Linear"),
        ("Clip", "act"),
        ("Gemm", "Linear"),
    ]  # fmt: skip  (BN and the bias Add folded)
    assert ann.nodes["matmul"].op.bias is not None
    x = np.random.default_rng(1).normal(0, 1, (40, 1, 8, 8))
    float_out, _ = ann_forward(ann, x)
    from onnx.reference import ReferenceEvaluator

    ref = ReferenceEvaluator(str(tmp_path / "hand.onnx"))
    for i in range(3):  # the folded float ANN equals ONNX's own reference evaluator
        onnx_out = ref.run(None, {"x": x[i : i + 1].astype(np.float32)})[0]
        np.testing.assert_allclose(float_out[i : i + 1], onnx_out, rtol=1e-4, atol=1e-5)
    g, conv = convert(ann, x[:32], bits=3, timesteps=10)
    _lossless(ann, g, conv, x[32:])


def test_unsupported_onnx_nodes_are_all_listed(tmp_path):
    nodes = [
        helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[2, 2], strides=[2, 2], name="mp"),
        helper.make_node("Sigmoid", ["p"], ["s"], name="sig"),
        helper.make_node("Flatten", ["s"], ["f"], name="flat"),
        helper.make_node("Softmax", ["f"], ["y"], name="softmax"),
    ]
    graph = helper.make_graph(
        nodes, "bad", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )  # fmt: skip
    path = tmp_path / "bad.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    with pytest.raises(SnnccError) as e:
        read_onnx(path)
    assert e.value.exit_code == 3 and e.value.code == "CV010"
    assert [d.node for d in e.value.diagnostics] == ["mp", "sig", "flat", "softmax"]
    assert "AveragePool" in e.value.format()  # what would work


def test_too_few_timesteps(rescnn_onnx):
    ann = read_onnx(rescnn_onnx)
    x, _ = data.digits("train", size=8)
    with pytest.raises(SnnccError) as e:
        convert(ann, x[:8], bits=4, timesteps=12)
    assert e.value.code == "CV002" and "13" in e.value.format()
    _, conv = convert(ann, x[:8], bits=None, timesteps=12)  # the most bits that fit
    assert conv.bits == 3


def test_convert_cli_writes_a_model_every_command_reads(tmp_path, capsys, rescnn_onnx):
    onnx_path = rescnn_onnx
    out = tmp_path / "snn.pt"
    code = main(["convert", str(onnx_path), "--timesteps", "13", "--bits", "4",
                 "--calibrate", "digits", "-o", str(out)])  # fmt: skip
    text, err = capsys.readouterr()
    assert code == 0, err
    assert "3 ExpG-IF layer(s) in 3 level(s), 4 bits" in text and "train split" in text
    assert main(["inspect", str(out)]) == 0
    assert "ExpGIF" in capsys.readouterr()[0]
    assert main(["energy", str(out), "--data", "digits", "--samples", "4"]) == 0
    capsys.readouterr()
    assert main(["inspect", str(out), "--timesteps", "12"]) == 2
    assert "error[E030]" in capsys.readouterr()[1]
    from snncc.loading import resolve_model, to_graph

    loaded = resolve_model(str(out))
    assert loaded.module is None and loaded.config["bits"] == 4
    ann = read_onnx(onnx_path)
    x, _ = data.digits("test", size=8)
    g = to_graph(loaded)
    want, _ = ann_forward(ann, x[:32].astype(np.float64), thetas=loaded.config["thetas"], bits=4)
    np.testing.assert_array_equal(run(g, {g.inputs[0]: x[:32]}).outputs[g.outputs[0]], want)
    # refusals: an existing output, too few steps, calibration data of the wrong shape
    assert main(["convert", str(onnx_path), "--timesteps", "13", "--calibrate", "digits",
                 "-o", str(out)]) == 2  # fmt: skip
    assert "error[CO002]" in capsys.readouterr()[1]
    assert main(["convert", str(onnx_path), "--timesteps", "5", "--bits", "4",
                 "--calibrate", "digits", "-o", str(tmp_path / "b.pt")]) == 2  # fmt: skip
    assert "error[CV002]" in capsys.readouterr()[1]
    np.savez(tmp_path / "cal.npz", x=np.zeros((4, 3, 8, 8), np.float32))
    assert main(["convert", str(onnx_path), "--timesteps", "13", "--calibrate",
                 str(tmp_path / "cal.npz"), "-o", str(tmp_path / "c.pt")]) == 2  # fmt: skip
    assert "error[CV003]" in capsys.readouterr()[1]


def test_calibration_uses_the_train_split_only():
    from snncc.cli.interop_cmds import calibration_data

    x, desc = calibration_data("digits", (1, 8, 8), 50)
    train, _ = data.digits("train", size=8)
    np.testing.assert_array_equal(x, train[:50])
    assert "train" in desc


def test_not_onnx(tmp_path, capsys):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\x01 not a protobuf")
    code = main(["convert", str(junk), "--timesteps", "9", "--calibrate", "digits",
                 "-o", str(tmp_path / "m.pt")])  # fmt: skip
    assert code == 2 and "error[CV001]" in capsys.readouterr()[1]


def test_example_script_runs(tmp_path):
    """examples/ann_to_snn.py end to end (2 epochs): every test digit bit-identical, and the
    Loihi compile's accuracy reported (its Lava run is tests/interop/test_ann2snn_loihi.py's)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, str(root / "examples" / "ann_to_snn.py"), "--epochs", "2",
         "--lava-samples", "0", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=600, cwd=root,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "bit-identical to the quantized ANN on 450/450 samples" in proc.stdout
    assert re.search(r"Loihi 2 \(bit-accurate\) +\d+\.\d%  \(450 samples\)", proc.stdout)
    assert (tmp_path / "out" / "loihi" / "network.py").is_file()
    assert (tmp_path / "out" / "snn.pt").is_file()


def test_a_skip_from_the_input_into_a_deeper_layer_is_refused(tmp_path):
    """x -> Relu(Conv) = a; Relu(Conv(x) + Conv(a)): the input's current reaches a level-2
    one-group neuron at every step, so it would be integrated 1 + K times (CV010, exit 3)."""
    rng = np.random.default_rng(2)
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["c1"], ["a"], name="relu1"),
        helper.make_node("Conv", ["x", "w2"], ["c2"], pads=[1, 1, 1, 1], name="skip"),
        helper.make_node("Conv", ["a", "w3"], ["c3"], pads=[1, 1, 1, 1], name="conv3"),
        helper.make_node("Add", ["c2", "c3"], ["s"], name="join"),
        helper.make_node("Relu", ["s"], ["y"], name="relu2"),
    ]
    inits = [_init("w1", rng.normal(0, 0.5, (2, 1, 3, 3))),
             _init("w2", rng.normal(0, 0.5, (2, 1, 3, 3))),
             _init("w3", rng.normal(0, 0.5, (2, 2, 3, 3)))]  # fmt: skip
    graph = helper.make_graph(
        nodes, "skip", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 4])], inits,
    )  # fmt: skip
    path = tmp_path / "skip.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    ann = read_onnx(path)
    with pytest.raises(SnnccError) as e:
        convert(ann, rng.normal(0, 1, (8, 1, 4, 4)), bits=2, timesteps=5)
    assert e.value.exit_code == 3 and e.value.code == "CV010"
    assert [d.node for d in e.value.diagnostics] == ["relu2"]
