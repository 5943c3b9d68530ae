"""The limits of ``refvi verify``: what a derivation file may ask for.

A derivation file is data: reading and checking one must end within bounded
time and memory whatever it holds. Each limit here is enforced where the
request is made, before any work, and an exceeded limit is one
``file:line: error:`` line (exit 2), never a hang or a traceback. The values
are documented in ``derivations/README.md``.
"""

import math


class LimitError(ValueError):
    """A request beyond a limit (the JSON report's error kind ``limits``)."""


#: Largest file read (bytes); devices, pipes and directories are refused.
MAX_FILE_BYTES = 10 * 2**20
#: Largest number of random instances per setting (front matter and --seeds).
MAX_SEEDS = 1000
#: Upper bounds of the file's and a line's numeric options (each must also be
#: finite and positive).
MAX_TOLERANCE = 1e-2
MAX_SEPARATION = 1.0
MAX_SIGMAS = 10.0
#: Computing time of one check expression (seconds of its thread's CPU time,
#: so that other load on the machine does not fail an honest check), and the
#: factor that bounds its wall time on a machine too loaded to run it.
CHECK_SECONDS = 10.0
WALL_FACTOR = 6
#: Largest array a check may make (elements), checked before allocation where
#: the size is known from the arguments.
MAX_ARRAY_ELEMENTS = 10**7
#: Most numbers a check holds at once while it evaluates its operands.
MAX_HELD_ELEMENTS = 5 * 10**7
#: Largest operation count of one matrix product, einsum or factorisation.
MAX_OPERATIONS = 10**9
#: Most Monte Carlo draws per datum a check may ask of ``MC_q(f, n=...)``.
MAX_MC_DRAWS = 10**6
#: Largest integer a check may make (bits).
MAX_INT_BITS = 10_000
#: Longest check expression (characters) and its deepest nesting.
MAX_EXPRESSION_CHARS = 20_000
MAX_NESTING = 100
#: Deepest chain of lambdas calling lambdas.
MAX_CALL_DEPTH = 10
#: Deepest bracket nesting of a LaTeX display, and its most tokens.
MAX_LATEX_NESTING = 50
MAX_LATEX_TOKENS = 2000
#: Most displayed equations in one file.
MAX_DISPLAYS = 1000
#: Bounds of the size options of settings (e.g. ``linear_gaussian(d=3)``).
SETTING_SIZES = {"d": 20, "k": 3, "K": 50, "J": 10, "n": 1000}


def check_number(key, text, upper):
    """The value of option ``key`` given as ``text``: a float in (0, upper].

    Raises ValueError naming the option otherwise (inf, nan, <= 0, too large).
    """
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{key} must be a number; got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise LimitError(f"{key} must be finite and positive; got {text}")
    if value > upper:
        raise LimitError(f"{key} must be at most {upper:g}; got {text}")
    return value


def check_seeds(value, what="seeds"):
    """``value`` as a number of seeds in 1 .. MAX_SEEDS, else ValueError."""
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"{what} must be an integer; got {value!r}") from None
    if not 1 <= n <= MAX_SEEDS:
        raise LimitError(f"{what} must be between 1 and {MAX_SEEDS}; got {value}")
    return n


def check_setting_options(name, options):
    """Refuse a size option of setting ``name`` outside 1 .. its bound
    (``SETTING_SIZES``); ValueError naming the option."""
    for key, value in options:
        if key not in SETTING_SIZES:
            continue
        try:
            n = int(value)
        except ValueError:
            raise ValueError(
                f"setting {name}: {key} must be an integer; got {value!r}"
            ) from None
        if not 1 <= n <= SETTING_SIZES[key]:
            raise LimitError(
                f"setting {name}: {key} must be between 1 and "
                f"{SETTING_SIZES[key]}; got {value}"
            )


def check_draws(n):
    """``n`` Monte Carlo draws as an int in 1 .. MAX_MC_DRAWS, else ValueError."""
    if not isinstance(n, int | float) or not 1 <= n <= MAX_MC_DRAWS:
        raise LimitError(f"draws n must be between 1 and {MAX_MC_DRAWS}; got {n!r}")
    return int(n)
