"""A broken-but-plausible edge update, for lessons and tests: the graph fails on part of the real input range.

:func:`fail_on_band` copies an edge bundle and edits its ONNX graph (the ``onnx`` package, development
side) so that rows whose ``feature`` lies strictly between ``low`` and ``high`` get NaN probabilities
(``how="nan"``) or make onnxruntime raise (``how="raise"``: a Gather with an index out of bounds). Every
other row is answered exactly as before, so the device's self-test passes when the band sits between its
probe rows — the mistake only real traffic finds (:mod:`shipml.edge.probation` is the defence). The copy
is re-hashed and unsigned: sign it as any release. Not shipped on the device (nothing there imports it).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from shipml.bundle import verify_bundle, write_bundle
from shipml.edge import PROBA_OUTPUT
from shipml.errors import ShipmlError


def fail_on_band(bundle: str | Path, out: str | Path, feature: str, low: float, high: float, *,
                 how: str = "nan", version: int | None = None) -> Path:
    """A copy of ``bundle`` at ``out`` whose model fails for ``low < feature < high``; optionally re-versioned."""
    import onnx
    from onnx import helper, numpy_helper

    if how not in ("nan", "raise"):
        raise ShipmlError(f"how must be 'nan' or 'raise', not {how!r}")
    metadata = verify_bundle(bundle, trusted_keys=False)
    inputs = {i.name: i.type.tensor_type.elem_type for i in onnx.load(Path(bundle) / metadata.model_file).graph.input}
    if inputs.get(feature) != onnx.TensorProto.FLOAT:
        raise ShipmlError(f"{bundle}: '{feature}' is not a float input of the graph (inputs: {sorted(inputs)})")
    out = Path(shutil.copytree(bundle, out))
    model = onnx.load(out / metadata.model_file)
    graph = model.graph
    raw = f"{PROBA_OUTPUT}_unbroken"
    for node in graph.node:  # the probabilities now come out of one more node, added at the end
        node.input[:] = [raw if n == PROBA_OUTPUT else n for n in node.input]
        node.output[:] = [raw if n == PROBA_OUTPUT else n for n in node.output]

    def const(name: str, value: object) -> str:
        graph.initializer.append(numpy_helper.from_array(np.asarray(value), f"fault_{name}"))
        return f"fault_{name}"

    nodes = [helper.make_node("Greater", [feature, const("low", np.float32(low))], ["fault_above"]),
             helper.make_node("Less", [feature, const("high", np.float32(high))], ["fault_below"]),
             helper.make_node("And", ["fault_above", "fault_below"], ["fault_hit"])]
    if how == "nan":
        nodes.append(helper.make_node("Where", ["fault_hit", const("nan", np.float32("nan")),
                                                const("zero", np.float32(0.0))], ["fault_add"]))
    else:  # index 0 is fine, index 7 of a one-value tensor is out of bounds: onnxruntime raises, for these rows
        nodes += [helper.make_node("Cast", ["fault_hit"], ["fault_hit64"], to=onnx.TensorProto.INT64),
                  helper.make_node("Mul", ["fault_hit64", const("seven", np.int64(7))], ["fault_index"]),
                  helper.make_node("Gather", [const("one", np.zeros(1, np.float32)), "fault_index"],
                                   ["fault_add"], axis=0)]
    nodes.append(helper.make_node("Add", [raw, "fault_add"], [PROBA_OUTPUT]))
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, out / metadata.model_file)
    if version is not None:
        metadata.version = version
    write_bundle(out, metadata)  # re-hashes model.onnx, drops the copied signature
    return out
