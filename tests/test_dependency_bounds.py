"""Declared lower bounds are true: no code in the package, the chapters or the tests uses an API newer
than pyproject.toml's bound for torch or numpy.

The table lists APIs by the release that introduced them (from the libraries' release notes). When
code starts using something new, add it here: the test then fails until the bound is raised.
"""

import json
import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent

# (distribution, release that introduced the API, regex over source code, an example the regex matches)
APIS = [
    ("torch", "2.0", r"\bscaled_dot_product_attention\b", "F.scaled_dot_product_attention(q, k, v)"),
    ("torch", "2.0", r"\btorch\.compile\(", "model = torch.compile(model)"),
    ("torch", "2.0", r"\btorch\.func\b", "from torch.func import vmap"),
    ("torch", "2.1", r"\bflop_counter\b|\bFlopCounterMode\b", "from torch.utils.flop_counter import FlopCounterMode"),
    ("torch", "2.1", r"\btorch\.export\b", "torch.export.export(model, args)"),
    ("torch", "2.1", r"\bparametrizations\.weight_norm\b", "nn.utils.parametrizations.weight_norm(conv)"),
    ("torch", "2.2", r"\bdevice_mesh\b|\binit_device_mesh\b",
     "from torch.distributed.device_mesh import init_device_mesh"),
    ("torch", "2.2", r"\btorch\.distributed\.checkpoint\.state_dict\b",
     "from torch.distributed.checkpoint.state_dict import get_state_dict"),
    ("torch", "2.3", r"\btorch\.nn\.attention\b|\bsdpa_kernel\b", "from torch.nn.attention import sdpa_kernel"),
    ("torch", "2.3", r"\btorch\.amp\.GradScaler\b", "scaler = torch.amp.GradScaler('cuda')"),
    ("torch", "2.3", r"\bget_default_device\(", "torch.get_default_device()"),
    ("torch", "2.4", r"\bnn\.RMSNorm\b|\brms_norm\(", "self.norm = nn.RMSNorm(dim)"),
    ("torch", "2.4", r"\badd_safe_globals\b", "torch.serialization.add_safe_globals([Config])"),
    ("torch", "2.4", r"\btorch\.library\.custom_op\b", "@torch.library.custom_op('ts::f', mutates_args=())"),
    ("torch", "2.4", r"\btorch\.distributed\.pipelining\b", "from torch.distributed.pipelining import pipeline"),
    ("torch", "2.5", r"\bnn\.Buffer\b", "self.mask = nn.Buffer(mask)"),
    ("torch", "2.5", r"\bflex_attention\b", "from torch.nn.attention.flex_attention import flex_attention"),
    ("torch", "2.5", r"\benable_gqa\s*=", "F.scaled_dot_product_attention(q, k, v, enable_gqa=True)"),
    ("torch", "2.5", r"\btorch\.distributed\.tensor\b", "from torch.distributed.tensor import DTensor"),
    # FSDP2: public as torch.distributed.fsdp.fully_shard since 2.6 (before: torch.distributed._composable)
    ("torch", "2.6", r"\btorch\.distributed\.fsdp\b[^\n]*\b(fully_shard|FSDPModule|MixedPrecisionPolicy)\b",
     "from torch.distributed.fsdp import fully_shard"),
    ("torch", "2.6", r"\btorch\.accelerator\b", "torch.accelerator.current_accelerator()"),
    ("numpy", "1.17", r"\bdefault_rng\(", "rng = np.random.default_rng(0)"),
    ("numpy", "1.20", r"\bsliding_window_view\b", "np.lib.stride_tricks.sliding_window_view(x, 3)"),
    ("numpy", "1.25", r"\bnp\.exceptions\b|\bnumpy\.exceptions\b", "except np.exceptions.AxisError:"),
    ("numpy", "1.25", r"\bnp\.dtypes\b|\bnumpy\.dtypes\b", "np.dtypes.StringDType"),
    ("numpy", "2.0", r"\bnp\.(trapezoid|concat|isdtype|permute_dims|matrix_transpose|bitwise_count|vecdot|pow)\(",
     "area = np.trapezoid(y, x)"),
    ("numpy", "2.0", r"\bnp\.unique_(all|counts|inverse|values)\(", "values, counts = np.unique_counts(x)"),
    ("numpy", "2.0", r"\bnp\.linalg\.(vector_norm|matrix_norm|vecdot)\(", "np.linalg.vector_norm(x, axis=-1)"),
    ("numpy", "2.0", r"\bnp\.strings\b", "np.strings.upper(names)"),
    ("numpy", "2.1", r"\bnp\.(unstack|cumulative_sum|cumulative_prod)\(", "np.cumulative_sum(x, include_initial=True)"),
    ("numpy", "2.2", r"\bnp\.(matvec|vecmat)\(", "np.matvec(A, x)"),
]
CHECKED = sorted({package for package, *_ in APIS})


def declared_bound(package: str) -> Version:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for line in project["dependencies"]:
        requirement = Requirement(line)
        if requirement.name == package:
            return max(Version(s.version) for s in requirement.specifier if s.operator == ">=")
    raise LookupError(f"{package} is not a dependency in pyproject.toml")


def sources() -> dict[str, str]:
    """``{path: code}`` for the package, the tools, the tests and the code cells of every chapter."""
    found = {}
    for folder in ("src", "tools", "tests"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.name != Path(__file__).name:  # this table names every API on purpose
                found[str(path.relative_to(ROOT))] = path.read_text()
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        found[str(path.relative_to(ROOT))] = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    return found


def too_new(package: str, bound: Version, code: str) -> list[tuple[str, str]]:
    """``[(release, matched text)]`` for each API of ``package`` in ``code`` that is newer than ``bound``."""
    return [(release, match.group(0)) for name, release, pattern, _ in APIS if name == package
            and Version(release) > bound for match in [re.search(pattern, code)] if match]


@pytest.mark.parametrize("package", CHECKED)
def test_code_uses_no_api_newer_than_the_declared_lower_bound(package):
    bound = declared_bound(package)
    offenders = {path: hits for path, code in sources().items() if (hits := too_new(package, bound, code))}
    assert not offenders, (f"pyproject.toml declares {package}>={bound}, but the code uses newer APIs "
                           f"(release, API): {offenders}; raise the bound or avoid the API")


@pytest.mark.parametrize("package, release, pattern, example", APIS, ids=[a[2][:40] for a in APIS])
def test_each_table_entry_recognises_its_example(package, release, pattern, example):
    assert re.search(pattern, example), f"{pattern!r} does not match its own example {example!r}"


def test_a_bound_older_than_the_code_is_caught():
    code = "from torch.distributed.fsdp import fully_shard\nself.norm = nn.RMSNorm(dim)\n"
    assert [release for release, _ in too_new("torch", Version("2.1"), code)] == ["2.4", "2.6"]
    assert too_new("torch", Version("2.6"), code) == []
    assert too_new("numpy", Version("1.23"), "np.trapezoid(y, x)") == [("2.0", "np.trapezoid(")]
