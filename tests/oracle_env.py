"""What the Python oracle tests share: they run under $LB_ORACLE_PYTHON (the venv tests/ci.sh
makes, with numpy, gguf and sentencepiece) when it is set, and a missing oracle module skips
the test (exit 77), or fails it (exit 1) with LB_REQUIRE_ORACLE=1 as in CI. The checks
themselves stay in each test."""
import importlib
import os
import sys

SYSTEM_PYTHON = "/usr/bin/python3"  # has Debian's numpy where a pyenv python3 may not


def use_oracle_python():
    """Re-runs the calling script under $LB_ORACLE_PYTHON unless that is already the case."""
    oracle = os.environ.get("LB_ORACLE_PYTHON")
    if oracle and os.path.abspath(sys.executable) != os.path.abspath(oracle) and \
            os.path.exists(oracle):
        os.execv(oracle, [oracle] + sys.argv)


def require(*names):
    """The named modules, imported; when one is missing, the script is re-run once under the
    system interpreter, else skipped (77) or failed (1 with LB_REQUIRE_ORACLE=1)."""
    try:
        return [importlib.import_module(name) for name in names]
    except ImportError as e:
        if os.path.exists(SYSTEM_PYTHON) and \
                os.path.realpath(sys.executable) != os.path.realpath(SYSTEM_PYTHON) and \
                not os.environ.get("LB_ORACLE_PYTHON"):
            os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON] + sys.argv)
        print(f"skipped: {e}")
        sys.exit(1 if os.environ.get("LB_REQUIRE_ORACLE") == "1" else 77)
