"""matplotlib, imported only when a figure is drawn (the optional ``plot`` extra)."""

MISSING = (
    "refvi figures needs matplotlib, the optional 'plot' extra: "
    "pip install 'refvi[plot]' (or pip install matplotlib)"
)


class MatplotlibMissing(ImportError):
    """matplotlib is not installed; the message says how to install it."""


def pyplot():
    """``matplotlib.pyplot`` on the file-only Agg backend, or MatplotlibMissing."""
    try:
        import matplotlib
    except ImportError:
        raise MatplotlibMissing(MISSING) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def new_figure(n_rows=1, n_cols=1, size=(6.4, 4.0), **kwargs):
    """A figure and its axes, with refvi's plain style."""
    plt = pyplot()
    fig, axes = plt.subplots(n_rows, n_cols, figsize=size, **kwargs)
    return fig, axes


def save(fig, path):
    """Write ``fig`` to ``path`` as PNG and close it."""
    fig.savefig(path, dpi=110, bbox_inches="tight")
    pyplot().close(fig)
