#!/usr/bin/env python3
"""Set up the example project and start it: ``python3 example_project/run.py``.

On a fresh clone with nothing but Python and pip, this creates ``.venv`` at the repository root
(or reuses it), installs the package into it, generates a throwaway ``ENCRYPTION_KEY`` when none
is set (kept in ``example_project/.demo-encryption-key`` so later runs can still read the data),
migrates the SQLite database, loads the demo rows (some deliberately left as legacy plaintext),
prints ``manage.py encryption_status``, creates a demo admin login and prints it with the URL, and
starts the development server. ``--no-server`` stops before the server (for CI).

Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
KEY_FILE = HERE / ".demo-encryption-key"
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "authhero-demo"  # noqa: S105 - the printed login of a local demo


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--no-server", action="store_true", help="Set everything up, then exit (for CI)."
    )
    parser.add_argument("--host", default="127.0.0.1", help="Server address (127.0.0.1).")
    parser.add_argument("--port", default="8000", help="Server port (8000).")
    parser.add_argument(
        "--venv", type=Path, default=ROOT / ".venv", help="Virtual environment (<repo>/.venv)."
    )
    parser.add_argument(
        "--reinstall", action="store_true", help="Run pip install -e . even if it looks done."
    )
    return parser.parse_args(argv)


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def run(
    command: Sequence[str | Path], env: Mapping[str, str] | None = None, *, required: bool = True
) -> None:
    say(" ".join(_shown(part) for part in command))
    result = subprocess.run([str(part) for part in command], env=env, check=False)  # noqa: S603
    if result.returncode and required:
        raise SystemExit(f"run.py: that step failed (exit status {result.returncode}).")
    if result.returncode:
        say(f"that step failed (exit status {result.returncode}); carrying on")


def _shown(part: str | Path) -> str:
    """A path relative to the working directory when it is inside it, for shorter output."""
    path = Path(part)
    if path.is_absolute() and Path.cwd() in path.parents:
        return str(path.relative_to(Path.cwd()))
    return str(part)


def venv_python(venv: Path) -> Path:
    if os.name == "nt":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def ensure_venv(venv: Path) -> Path:
    python = venv_python(venv)
    if python.exists():
        say(f"Reusing the virtual environment {_shown(venv)}")
        return python
    say(f"Creating the virtual environment {_shown(venv)}")
    result = subprocess.run([sys.executable, "-m", "venv", str(venv)], check=False)  # noqa: S603
    if result.returncode or not python.exists():
        raise SystemExit(
            "run.py: could not create a virtual environment. On Debian and Ubuntu install "
            "python3-venv (apt install python3-venv), then run this again."
        )
    return python


def is_installed(python: Path) -> bool:
    """Whether the venv already imports Django, DRF and *this* checkout's authhero_encrypt."""
    # rest_framework and django_filters: the drf extra, which the management API needs.
    probe = (
        "import django, rest_framework, django_filters, authhero_encrypt; "
        "print(authhero_encrypt.__file__)"
    )
    result = subprocess.run(  # noqa: S603
        [str(python), "-c", probe], cwd=HERE, capture_output=True, text=True, check=False
    )
    if result.returncode:
        return False
    location = Path(result.stdout.strip()).resolve()
    return ROOT in location.parents


def demo_key(environ: Mapping[str, str], key_file: Path) -> tuple[str, str | None]:
    """The ``ENCRYPTION_KEY`` to use and, when it is the throwaway one, a note saying so.

    The generated key is written once and reused, so the data of earlier runs stays readable.
    """
    if environ.get("ENCRYPTION_KEY"):
        return environ["ENCRYPTION_KEY"], None
    where = _shown(key_file)
    if key_file.exists():
        key = key_file.read_text("ascii").strip()
        return key, f"ENCRYPTION_KEY is not set: using the throwaway demo key in {where}."
    key = base64.b64encode(secrets.token_bytes(32)).decode("ascii")
    key_file.touch(mode=0o600)
    key_file.write_text(key + "\n", "ascii")
    return key, (
        f"ENCRYPTION_KEY is not set: generated a throwaway demo key and saved it in {where} "
        "(git ignores it). It is for this demo only; never use it for real data."
    )


def has_command(manage: Sequence[str | Path], name: str, env: Mapping[str, str]) -> bool:
    result = subprocess.run(  # noqa: S603
        [str(part) for part in (*manage, "help", name)],
        env=env,
        capture_output=True,
        check=False,
    )
    return result.returncode == 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    python = ensure_venv(args.venv.resolve())
    if args.reinstall or not is_installed(python):
        # The drf extra: Django REST framework and django-filter, for /api/v2/.
        target = f"{ROOT}[drf]"
        run([python, "-m", "pip", "install", "--disable-pip-version-check", "-q", "-e", target])
    else:
        say("authhero_encrypt is already installed in it (use --reinstall to install again)")

    key, note = demo_key(os.environ, KEY_FILE)
    if note:
        say(note)
    env = {**os.environ, "ENCRYPTION_KEY": key, "PYTHONUNBUFFERED": "1"}
    manage = [python, HERE / "manage.py"]
    run([*manage, "migrate", "--noinput", "--verbosity", "0"], env)
    run([*manage, "load_demo_data"], env)
    if has_command(manage, "encryption_status", env):
        # Informational: a report that cannot be made is no reason to stop the demo.
        run([*manage, "encryption_status"], env, required=False)
    else:
        say("manage.py encryption_status is not available in this version; skipped")
    run(
        [*manage, "create_demo_admin", "--username", ADMIN_USERNAME, "--password", ADMIN_PASSWORD],
        env,
    )

    url = f"http://{args.host}:{args.port}/admin/"
    api = f"http://{args.host}:{args.port}/api/v2/clients"
    print(
        f"\nThe demo admin is ready:\n  URL:      {url}\n  Username: {ADMIN_USERNAME}\n"
        f"  Password: {ADMIN_PASSWORD}\n  API:      {api} (and /api/v2/connections; "
        "the same login)\n",
        flush=True,
    )
    if args.no_server:
        key_hint = f'ENCRYPTION_KEY="$(cat {_shown(KEY_FILE)})" ' if note else ""
        print(
            "Start it later with:\n"
            f"  {key_hint}{_shown(python)} {_shown(HERE / 'manage.py')} runserver "
            f"{args.host}:{args.port}",
            flush=True,
        )
        return 0
    say("Starting the development server (Ctrl+C stops it)")
    try:
        return subprocess.call(  # noqa: S603
            [str(python), str(HERE / "manage.py"), "runserver", f"{args.host}:{args.port}"],
            env=env,
        )
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
