"""Reference cases as JSON: plain arrays and names, versioned.

The document (``refvi cases --json``) is::

    {"schema": "refvi-cases", "schema_version": 1, "refvi_version": "...",
     "conventions": [...],                      # stated once for every case
     "cases": [{"name", "quantity", "description", "seed", "conventions",
                "options": {name: string or number},
                "inputs":  {name: {"shape": [...], "data": nested list}},
                "outputs": {name: {"shape": [...], "data": nested list,
                                   "rtol": float, "tolerance_source": str}}}]}

A 0-d array's ``data`` is a bare number. Floats are written with Python's
shortest round-trip repr, so a JSON parser in any language reads back the
exact float64 values. ``cases_schema.json`` (beside this module, and
:func:`json_schema`) is the JSON Schema of the document; docs/crosscheck.md
describes it.
"""

import json
from importlib import resources

import numpy as np

from refvi import __version__
from refvi.crosscheck.case import Case

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "CONVENTIONS",
    "to_document",
    "to_json",
    "from_json",
    "json_schema",
]

SCHEMA = "refvi-cases"
SCHEMA_VERSION = 1

#: Conventions shared by every case (each case adds its own).
CONVENTIONS = (
    "arrays are float64, row-major; shapes are data-first: x (n, d)",
    "KL(q || p) = E_q[log q - log p]: the expectation is under q, the "
    "distribution named first (torch.distributions.kl_divergence(q, p))",
    "scale_tril / L / L_q / L_B / L_S are lower Cholesky factors of a "
    "covariance Sigma = L L^T, never the covariance itself; cov / S / "
    "covariances are covariances",
    "log_std is a log standard deviation; std a standard deviation; psi a variance",
    "value and other per-datum outputs have shape (n,) or the batch shape: "
    "never summed or averaged",
    "grad_<input> is the gradient of the SUM of value over its entries w.r.t. "
    "<input>, with <input>'s shape; w.r.t. a Cholesky factor it is lower "
    "triangular (zero above the diagonal); w.r.t. log_std it is w.r.t. the log "
    "standard deviation; w.r.t. psi it is w.r.t. the variance",
    "W has shape (d, k) (Bishop's orientation; scikit-learn's components_ is W^T)",
    "an output passes when max |got - ref| <= rtol * max |ref| over its entries "
    "(max |got - ref| <= rtol when ref is all zeros)",
)


def _array(a):
    a = np.asarray(a, dtype=float)
    return {"shape": list(a.shape), "data": a.tolist()}


def _case_object(case):
    return {
        "name": case.name,
        "quantity": case.quantity,
        "description": case.description,
        "seed": case.seed,
        "conventions": list(case.conventions),
        "options": dict(case.options),
        "inputs": {k: _array(v) for k, v in case.inputs.items()},
        "outputs": {
            k: {
                **_array(v),
                "rtol": case.rtol[k],
                "tolerance_source": case.tolerance_source[k],
            }
            for k, v in case.outputs.items()
        },
    }


def to_document(cases):
    """The JSON document (a dict of plain lists, strings and numbers) of ``cases``."""
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "refvi_version": __version__,
        "conventions": list(CONVENTIONS),
        "cases": [_case_object(c) for c in cases],
    }


def to_json(cases, indent=1):
    """``cases`` as JSON text (no NaN or infinity: strict JSON)."""
    return json.dumps(to_document(cases), indent=indent, allow_nan=False)


def _read_array(obj, where):
    try:
        a = np.array(obj["data"], dtype=float)
        shape = tuple(obj["shape"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(
            f"{where} must be {{'shape': [...], 'data': ...}}: {err}"
        ) from None
    if a.shape != shape:
        raise ValueError(f"{where} has data of shape {a.shape} but shape {list(shape)}")
    return a


def from_json(text):
    """The cases of a JSON document (text, or the dict ``json.loads`` gives).

    Raises ValueError when it is not a ``refvi-cases`` document of this
    schema version.
    """
    doc = json.loads(text) if isinstance(text, str | bytes) else text
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ValueError(f"text must be a {SCHEMA!r} JSON document")
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(
            f"text has schema_version {doc.get('schema_version')!r}; this refvi "
            f"reads version {SCHEMA_VERSION}"
        )
    cases = []
    for obj in doc["cases"]:
        name = obj["name"]
        outputs = obj["outputs"]
        cases.append(
            Case(
                name=name,
                quantity=obj["quantity"],
                description=obj["description"],
                seed=obj["seed"],
                inputs={
                    k: _read_array(v, f"{name}: input {k}")
                    for k, v in obj["inputs"].items()
                },
                options=dict(obj["options"]),
                outputs={
                    k: _read_array(v, f"{name}: output {k}") for k, v in outputs.items()
                },
                rtol={k: float(v["rtol"]) for k, v in outputs.items()},
                tolerance_source={k: v["tolerance_source"] for k, v in outputs.items()},
                conventions=tuple(obj["conventions"]),
            )
        )
    return cases


def json_schema():
    """The JSON Schema of the document (``cases_schema.json``), as a dict."""
    text = resources.files("refvi.crosscheck").joinpath("cases_schema.json").read_text()
    return json.loads(text)
