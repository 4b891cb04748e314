"""Helpers shared by the end-to-end tests: where things are, running the binary, free ports."""
import json
import os
import socket
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def shared_dir():
    """The read-only shared reference folder (data/, reference/): $TW_SHARED_DIR, ../shared, /work/shared."""
    for cand in (os.environ.get("TW_SHARED_DIR"), os.path.join(ROOT, "..", "shared"), "/work/shared"):
        if cand and os.path.isdir(os.path.join(cand, "data", "cloudtrail")):
            return os.path.abspath(cand)
    raise RuntimeError("shared reference data not found: set TW_SHARED_DIR to the folder holding data/ and reference/")


def tw_bin():
    return os.environ.get("TW_BIN") or os.path.join(ROOT, "build", "trailwatch")


def run(args, input=None, timeout=120, env=None, check=None):
    """Runs trailwatch with args; returns CompletedProcess (text mode unless input is bytes)."""
    text = not isinstance(input, (bytes, bytearray))
    p = subprocess.run([tw_bin()] + list(args), input=input, capture_output=True, text=text,
                       timeout=timeout, env=env)
    if check is not None and p.returncode != check:
        raise AssertionError("trailwatch %s exited %d (wanted %d)\nstdout: %s\nstderr: %s" %
                             (" ".join(args), p.returncode, check, p.stdout[-2000:], p.stderr[-2000:]))
    return p


def jsonl(text):
    """The JSON lines of a command's output."""
    return [json.loads(l) for l in text.splitlines() if l.strip()]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tmpdir():
    return tempfile.mkdtemp(prefix="tw-e2e-")
