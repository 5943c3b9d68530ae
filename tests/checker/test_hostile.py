# ruff: noqa: E501  (the table of hostile checks reads best one per line)
"""Hostile derivations: a check block that tries to reach the machine.

Each file below holds one check that, under Python's ``eval`` with the numpy
module in scope, would run a command, write or read a file, open a URL, load
a pickle, change a cached instance, or exhaust memory or time. Each must be
refused with exit 2 and one ``file:line: error:`` line naming the construct;
no file may be created or changed (the test's folder is watched, and is the
working directory); the contents of a file the check tries to read must not
appear in the output; and an honest file run after it in the same command
must get the verdict it gets alone.
"""

import pytest

from refvi.checker import limits
from refvi.cli import main

HONEST = """---
settings: linear_gaussian
---

$$ \\sum W^2 = 0 $$

```check
np.sum(W * W)
= 0
```
"""

#: (id, check expression, the construct its error names). ``{victim}`` is a
#: file the check tries to create or change, ``{secret}`` one it tries to read.
HOSTILE = [
    ("f2py-os", "np.f2py.os.system('touch {victim}')", "np.f2py"),
    ("f2py-subprocess", "np.f2py.subprocess.run(['touch', '{victim}'])", "np.f2py"),
    ("builtins-exec", "np.ma.core.builtins.exec('open(\"{victim}\", \"w\")')", "np.ma"),
    ("builtins-eval", "np.ma.core.builtins.eval('1 + 1')", "np.ma"),
    ("builtins-open", "np.ma.core.builtins.open('{secret}').read()", "np.ma"),
    ("ctypes", "np.ctypeslib.ctypes.CDLL(None).system('touch {victim}')", "np.ctypeslib"),
    ("save", "np.save('{victim}', W)", "np.save"),
    ("savetxt", "np.savetxt('{victim}', W)", "np.savetxt"),
    ("savez", "np.savez('{victim}', W=W)", "np.savez"),
    ("memmap-write", "np.memmap('{victim}', mode='w+', shape=(3,))", "np.memmap"),
    ("open-memmap", "np.lib.format.open_memmap('{victim}', mode='w+', shape=(3,))", "np.lib"),
    ("tofile", "W.tofile('{victim}')", ".tofile"),
    ("copyto", "np.copyto(W, 0)", "np.copyto"),
    ("loadtxt", "np.loadtxt('{secret}')", "np.loadtxt"),
    ("genfromtxt", "np.genfromtxt('{secret}')", "np.genfromtxt"),
    ("fromfile", "np.fromfile('{secret}')", "np.fromfile"),
    ("datasource-file", "np.lib.npyio.DataSource(None).open('{secret}').read()", "np.lib"),
    ("datasource-url", "np.lib.npyio.DataSource(None).open('http://127.0.0.1:9/x')", "np.lib"),
    ("pickle-load", "np.load('{secret}', allow_pickle=True)", "np.load"),
    ("setflags", "W.setflags(write=True)", ".setflags"),
    ("out-keyword", "np.exp(W, out=W)", "out="),
    ("out-positional", "np.exp(W, W)", "np.exp takes at most 1 positional"),
    ("out-method", "W.sum(0, None, W)", ".sum takes at most 1 positional"),
    ("fill", "W.fill(0)", ".fill"),
    ("put", "W.put(0, 1.0)", ".put"),
    ("resize", "W.resize(1)", ".resize"),
    ("array-base", "W.base", ".base"),
    ("array-data", "W.data", ".data"),
    ("class-chain", "W.__class__.__init__.__globals__", "__class__"),
    ("function-globals", "E_q.__globals__", "__globals__"),
    ("fn-closure", "log_q.f", ".f"),
    ("np-dict", "np.__dict__", "__dict__"),
    ("import", "__import__('os')", "'__import__'"),
    ("open", "open('{secret}')", "'open'"),
    ("getattr", "getattr(W, 'setflags')(write=True)", "'getattr'"),
    ("comprehension", "[open(p) for p in ['{secret}']]", "comprehension"),
    ("fstring", "f'{{W}}'", "JoinedStr"),
    ("bytes", "b'x'", "bytes constant"),
    ("lambda-code", "(lambda: 0).__code__", "__code__"),
    ("np-as-value", "np.linalg(W)", "np.linalg"),
    ("int-power", "10**10**8", "integer **"),
    ("range", "sum(range(10**11))", "range"),
    ("ones", "np.ones((18000, 18000))", "np.ones"),
    ("list-repeat", "[0] * 10**9", "repeating a sequence"),
    ("string-repeat", "'a' * 10**10", "repeating a sequence"),
    ("outer", "np.outer(np.ones(10**5), np.ones(10**5))", "np.outer"),
    ("broadcast", "np.ones((10**4, 1)) * np.ones(10**4)", "'*'"),
    ("list-to-array", "np.sum([np.ones(10**6)] * 1000)", "list of"),
    ("einsum", "np.einsum('ij,jk,kl->il', *[np.ones((2000, 2000))] * 3)", "Starred"),
    ("einsum-cost", "np.einsum('ij,jk,kl->il', np.ones((3000, 3)), np.ones((3, 3000)), np.ones((3000, 3000)))", "np.einsum"),
    ("eigh-cost", "np.linalg.eigh(np.ones((3000, 3000)))", "factorisation"),
    ("mc-draws", "MC_q(log_q, n=10**9)", "draws n must be between 1 and 1000000"),
    ("held-arrays", "[" + ", ".join(["np.zeros(10**7)"] * 10) + "]", "holds more than"),
    ("held-nested", "np.zeros(10**7) + (" * 8 + "1" + ")" * 8, "holds more than"),
    ("full-strings", "np.full((3000, 3000), 'a' * 1000)", "np.full fills with a number"),
    ("tril-vector", "np.tril(np.ones(10**5))", "np.tril"),
    ("arange-tiny-step", "np.arange(0, 1, 1e-10)", "np.arange"),
    ("fancy-index", "np.ones((3000, 3000))[[[0] * 3000] * 3000]", "indexing by a list"),
    ("string-array", "np.ones_like(['a' * 10**6] * 1000)", "list of"),
    ("recursion", "(lambda f: f(f))(lambda f: f(f))", "lambdas call each other"),
    ("deep-calls", "abs(" * 150 + "1" + ")" * 150, "nests more than"),
    ("deep-lists", "[" * 120 + "]" * 120, "nests more than"),
    ("unary-bomb", "-" * 100_000 + "1", "characters"),
    ("time-bomb", " + ".join(["sum(range(10**7))"] * 400), "longer than"),
]  # fmt: skip


def _snapshot(folder):
    return {
        p.relative_to(folder): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
    }


@pytest.fixture(scope="module")
def honest_alone(tmp_path_factory):
    """The honest file's report when run alone: it fails (exit 1)."""
    path = tmp_path_factory.mktemp("honest") / "honest.md"
    path.write_text(HONEST)
    return path


def _report(capsys, *argv):
    status = main(["verify", *map(str, argv)])
    out, err = capsys.readouterr()
    return status, out, err


def _verdict_lines(out):
    return [line for line in out.splitlines() if not line.startswith("total")]


def test_hostile_cases_are_at_least_thirty():
    assert len(HOSTILE) >= 30
    assert len({name for name, _, _ in HOSTILE}) == len(HOSTILE)


@pytest.mark.parametrize(("check", "construct"), [h[1:] for h in HOSTILE],
                         ids=[h[0] for h in HOSTILE])  # fmt: skip
def test_hostile_check_is_refused_and_changes_nothing(
    check, construct, honest_alone, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(limits, "CHECK_SECONDS", 5.0)  # the time bomb ends sooner
    secret_text = "TOP-SECRET-4f1c9a"
    secret = tmp_path / "secret.txt"
    secret.write_text(secret_text + "\n")
    victim = tmp_path / "victim"
    hostile = tmp_path / "hostile.md"
    hostile.write_text(
        "---\nsettings: linear_gaussian\n---\n\n$$ a = b $$\n\n```check\n"
        + check.format(victim=victim, secret=secret)
        + "\n```\n"
    )
    honest = tmp_path / "honest.md"
    honest.write_text(HONEST)
    alone_status, alone_out, _ = _report(capsys, honest_alone)
    before = _snapshot(tmp_path)

    status, out, err = _report(capsys, hostile, honest)

    assert status == 2
    errors = [line for line in err.splitlines() if line.startswith(f"{hostile}:")]
    assert len(errors) == 1, err
    assert errors[0].startswith(f"{hostile}:8: error: "), errors[0]
    assert construct in errors[0]
    assert "Traceback" not in out + err
    assert secret_text not in out + err
    assert _snapshot(tmp_path) == before
    assert not victim.exists()
    # the honest file, run after the hostile one, gets its verdict alone
    assert alone_status == 1
    assert _verdict_lines(out) == [
        line.replace(str(honest_alone), str(honest))
        for line in _verdict_lines(alone_out)
    ]
