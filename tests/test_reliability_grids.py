"""Hostile and mistyped grids: object tags, alias bombs, recursive aliases, huge expansions, names that would escape
the results folder; and a property test (hypothesis) that feeds the grid loader and the CLI random documents and
asserts each is a valid grid or one clean error line with exit status 2, never a traceback."""
from __future__ import annotations

import copy

import pytest
import yaml
from cli_helper import cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.grid import MAX_CELLS, Grid, GridError, load_grid
from bench.grid.guard import MAX_NODES
from launch.cli import main

VALID = {
    "name": "hostile",
    "originals": [{"backbone": "test_tinycnn", "trained_on": "digits", "hparams": {"epochs": 1}}],
    "tasks": ["digits_01"],
    "methods": [{"name": "ar", "lam": [0.0, 1.0e-3], "hparams": {"lr": 0.05}}, {"name": "linear_probe"}],
    "hparams": {"batch_size": 64, "epochs": 2},
    "split": {"max_train": 100},
    "seeds": [0, 1],
}


def write(tmp_path, text: str, name: str = "g.yaml"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    return path


def cli_error(capsys, *argv) -> str:
    """Run the CLI in-process; assert exit 2 and exactly one clean error line; -> that line."""
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    assert code == 2, (code, captured.err[-2000:])
    assert "Traceback" not in captured.err + captured.out
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("reprogbench: error: "), captured.err
    return lines[0]


BILLION_LAUGHS = """
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
originals: [{backbone: test_tinycnn, trained_on: digits}]
tasks: [digits]
methods: [{name: ar, lam: *i}]
"""

HOSTILE = {
    "python_object_tag": ("!!python/object/apply:os.system ['touch /tmp/reprogbench-pwned']\n", "no tags such as"),
    "python_name_tag": ("originals: !!python/name:os.system\n", "no tags such as"),
    "billion_laughs": (BILLION_LAUGHS, f"more than {MAX_NODES:,} values"),
    "recursive_alias": ("a: &a [*a]\n", "recursive"),
    "deep_nesting": ("x: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than"),
    "huge_file": ("# " + "x" * (2 << 20) + "\n", "KiB"),
    "not_utf8": (b"name: \xff\xfe\n".decode("utf-8", "surrogateescape"), "not a text file"),
    "dotdot_name": (yaml.safe_dump({**VALID, "name": ".."}), "cannot name a results folder"),
    "slash_name": (yaml.safe_dump({**VALID, "name": "../../etc"}), "pattern"),
    "control_char_name": (yaml.safe_dump({**VALID, "name": "a\x1bb"}), "pattern"),
    "non_string_key": (yaml.safe_dump({**VALID, "hparams": {1: [2, 3]}}), "is not a name"),
    "typo_expansion": (yaml.safe_dump({**VALID, "seeds": list(range(3000)), "hparams": {"lr": [1e-3] * 10}}),
                       "over the limit of 10,000"),
    # issue 19.6: each of these loaded, then failed later, wrote into the suite's own files, or ran something else
    "store_name": (yaml.safe_dump({**VALID, "name": "mlflow.db"}), "uses for its own files"),
    "store_lock_name": (yaml.safe_dump({**VALID, "name": "mlflow.db.lock"}), "uses for its own files"),
    "artifacts_name": (yaml.safe_dump({**VALID, "name": "mlartifacts"}), "uses for its own files"),
    "long_name": (yaml.safe_dump({**VALID, "name": "a" * 300}), "300 characters, over 100"),
    "no_train_split": (yaml.safe_dump({**VALID, "split": {"val_fraction": 0.6, "test_fraction": 0.4}}),
                       "must leave a training split"),
    "duplicate_key": (yaml.safe_dump(VALID).replace("epochs: 2", "epochs: 2\n  epochs: 5000"),
                      "key 'epochs' appears twice"),
    "bool_lr": (yaml.safe_dump({**VALID, "hparams": {"lr": True}}), "hparams.lr: a boolean where a number"),
    "bool_epochs": (yaml.safe_dump({**VALID, "hparams": {"epochs": True}}), "hparams.epochs:"),
    "bool_lam": (yaml.safe_dump({**VALID, "methods": [{"name": "ar", "lam": True}]}), "lam: a boolean where"),
    "joint_repeat": (yaml.safe_dump({**VALID, "tasks": ["digits_01+squares+digits_01"]}), "repeats digits_01"),
}


@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_a_hostile_grid_is_one_clean_error_line(tmp_path, capsys, case):
    text, expected = HOSTILE[case]
    path = write(tmp_path, text)
    line = cli_error(capsys, "ls", path, "--results", tmp_path / "results")
    assert expected in line and str(path) in line
    assert not (tmp_path / "results").exists()  # nothing written
    assert "\x1b" not in line and len(line) < 2000


def test_a_huge_sparse_file_is_refused_without_being_read(tmp_path, capsys):
    path = tmp_path / "sparse.yaml"
    with open(path, "wb") as f:
        f.truncate(256 << 20)  # 256 MiB of holes: read whole, it would cost the memory the cap is there to save
    assert "the file is over 1024 KiB" in cli_error(capsys, "ls", path)


def test_the_cell_limit_is_stated_and_max_cells_lifts_it(tmp_path, capsys):
    # (2 ar lam values + 1 linear_probe) x 3400 seeds + 1 pretrain cell = 10,201
    path = write(tmp_path, yaml.safe_dump({**VALID, "seeds": list(range(3400))}))
    line = cli_error(capsys, "ls", path, "--ids")
    assert f"up to 10,201 cells, over the limit of {MAX_CELLS:,}" in line and "--max-cells 10201" in line
    assert main(["ls", str(path), "--ids", "--max-cells", "10201"]) == 0
    assert len(capsys.readouterr().out.split()) == 10_201


def test_an_expansion_is_refused_before_it_is_built(tmp_path, capsys):
    # 10^12 combinations: materialising them would never end; the bound is computed from the list lengths
    params = {f"k{i}": list(range(10)) for i in range(12)}
    path = write(tmp_path, yaml.safe_dump({**VALID, "methods": [{"name": "ar", **params}]}))
    assert "up to 2,000,000,000,001 cells" in cli_error(capsys, "ls", path)  # x 2 seeds + 1 pretrain cell


def test_hostile_grids_through_the_real_command_line(tmp_path):
    """The installed entry point as a user runs it: exit 2, one line, no traceback, nothing run."""
    for case in ("python_object_tag", "billion_laughs", "dotdot_name"):
        path = write(tmp_path, HOSTILE[case][0], f"{case}.yaml")
        proc = cli("run", path, "--results", tmp_path / "results", "--no-tracking", timeout=300)
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "results").exists()
    import pathlib

    assert not pathlib.Path("/tmp/reprogbench-pwned").exists()


# --------------------------------------------------------------------------- property test

WORDS = ["ar", "linear_probe", "scratch", "pretrain", "digits", "digits_01", "squares", "test_tinycnn", "smallcnn",
         "resnet18", "imagenet", "adam", "sgd", "first_k", "random", "learned", "centre", "ones", "add", "multiply",
         "thesis_table_3_1", "..", "/", "", "a,b", "mask, combine", "lr", "epochs", "loguniform", "uniform", "int",
         "choice"]
KEYS = ["name", "lr", "epochs", "batch_size", "optimizer", "hparams", "backbone", "trained_on", "weights", "fallback",
        "input_size", "tasks", "methods", "lam", "mask", "combine", "label_map", "search", "seed", "split",
        "max_train", "val_fraction", "mask, combine", "lr, epochs", "loguniform", "choice", "int"]
EDGES = [0, -1, 1, 2, 10**20, 0.0, 1e-3, 0.5, 1.0, -1.0, 1e30, 1e308, float("inf"), float("-inf"), float("nan"),
         True, False, None, "", "1e-3", [], {}, [[]], [None]]
EDGE_FLOATS = st.sampled_from([float("inf"), float("-inf"), float("nan"), 1e308, -0.0])
scalars = st.one_of(st.sampled_from(EDGES), st.integers(-3, 300), st.integers(-10**30, 10**30),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12), st.sampled_from(WORDS))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), inner, max_size=4)), max_leaves=10)
PATHS = [("name",), ("originals",), ("originals", 0), ("originals", 0, "backbone"), ("originals", 0, "hparams"),
         ("originals", 0, "trained_on"), ("originals", 0, "weights"), ("originals", 0, "fallback"),
         ("originals", 0, "input_size"), ("originals", 0, "tasks"), ("originals", 0, "methods"),
         ("originals", 0, "split"), ("originals", 0, "seed"), ("tasks",), ("tasks", 0), ("methods",),
         ("methods", 0), ("methods", 0, "lam"), ("methods", 0, "mask"), ("methods", 0, "combine"),
         ("methods", 0, "label_map"), ("methods", 0, "input_size"), ("methods", 0, "mask, combine"),
         ("methods", 0, "hparams"), ("methods", 0, "hparams", "lr"), ("methods", 1, "name"), ("methods", 1),
         ("hparams",), ("hparams", "epochs"), ("hparams", "lr"), ("hparams", "batch_size"), ("hparams", "optimizer"),
         ("hparams", "lr, epochs"), ("split",), ("split", "max_train"), ("split", "val_fraction"), ("seeds",),
         ("seeds", 0), ("reference",), ("not_run",), ("methods", 0, "search"), ("methods", 0, "search", "lr"),
         ("originals", 0, "method_params"), ("originals", 0, "method_params", "ar")]


def set_at(document, path: tuple, value) -> None:
    """document[path] = value where the path exists (an earlier mutation may have replaced a parent)."""
    target = document
    for key in path[:-1]:
        if isinstance(target, dict) and key in target or isinstance(target, list) and isinstance(key, int) \
                and key < len(target):
            target = target[key]
        else:
            return
    last = path[-1]
    if isinstance(target, dict) and isinstance(last, str) or isinstance(target, list) and isinstance(last, int) \
            and last < len(target):
        target[last] = value


def delete_at(document, path: tuple) -> None:
    parent = document
    for key in path[:-1]:
        if not (isinstance(parent, dict) and key in parent):
            return
        parent = parent[key]
    if isinstance(parent, dict):
        parent.pop(path[-1], None)


@st.composite
def mutated_grids(draw):
    """The valid grid with one to three values replaced by random ones: near misses, as typos are."""
    grid = copy.deepcopy(VALID)
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):  # mostly one typo, so the rest stays valid
        path = draw(st.sampled_from(PATHS))
        if draw(st.integers(0, 5)) == 0:
            delete_at(grid, path)
        else:
            set_at(grid, path, draw(st.one_of(EDGE_FLOATS, st.sampled_from(EDGES), scalars, values)))
    return yaml.safe_dump(grid, allow_unicode=True)


documents = st.one_of(
    mutated_grids(),
    values.map(lambda v: yaml.safe_dump(v, allow_unicode=True)),
    st.text(max_size=200),  # any text: most of it is not YAML, some is
    st.text(alphabet="[]{}:,-&*!|>'\"#%@ \n\tab01", max_size=80),  # YAML's punctuation, to reach its odd corners
)

EXAMPLES = 1000


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                     HealthCheck.too_slow])
@given(text=documents)
def test_any_document_is_a_grid_or_one_clean_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("doc") / "doc.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        grid = load_grid(path)
    except GridError as exc:
        message = str(exc)
        assert message.startswith(str(path)) and "\n" not in message.replace(str(path), "")
    else:
        assert isinstance(grid, Grid) and all(len(c.cell_id) == 12 for c in grid.cells)


@settings(max_examples=EXAMPLES // 4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                          HealthCheck.too_slow])
@given(text=documents)
def test_any_document_through_the_cli_exits_0_or_2_with_one_line(tmp_path_factory, capsys, text):
    folder = tmp_path_factory.mktemp("cli")
    path = folder / "doc.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    code = main(["ls", str(path), "--ids", "--results", str(folder / "results")])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    if code == 2:
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("reprogbench: error: ")
    else:
        assert code == 0


@pytest.mark.parametrize("change, expected", [
    ({"hparams": {"lr": float("inf")}}, "hparams.lr: inf is not a finite number"),
    ({"methods": [{"name": "ar", "lam": float("inf")}]}, "method.lam: inf is not a finite number"),
    ({"seeds": [-1]}, "seeds.0: Input should be greater than or equal to 0"),
    ({"seeds": [2**40]}, "seeds.0: Input should be less than 4294967296"),
], ids=["inf_lr", "inf_lam", "negative_seed", "seed_over_32_bits"])
def test_values_no_cell_could_run_with_are_refused(tmp_path, capsys, change, expected):
    """Found by the property test or beside what it found: each was a traceback, or a cell failing when it started."""
    path = write(tmp_path, yaml.safe_dump({**VALID, **change}))
    assert expected in cli_error(capsys, "ls", path)


SWEEP_EDGES = [float("inf"), float("-inf"), float("nan"), 1e308, -1, 0, 2**40, None, "", "..", [], {}, True]


def test_every_edge_value_at_every_key_is_a_grid_or_one_clean_error(tmp_path):
    """Exhaustive where the random search is thin: each edge value at each key of the valid grid."""
    path = tmp_path / "edge.yaml"
    outcomes = {"valid": 0, "error": 0}
    for key in PATHS:
        for value in SWEEP_EDGES:
            grid = copy.deepcopy(VALID)
            set_at(grid, key, value)
            path.write_text(yaml.safe_dump(grid))
            try:
                load_grid(path)
                outcomes["valid"] += 1
            except GridError as exc:
                assert "\n" not in str(exc), (key, value)
                outcomes["error"] += 1
    assert sum(outcomes.values()) == len(PATHS) * len(SWEEP_EDGES) and outcomes["error"] > outcomes["valid"] > 0
