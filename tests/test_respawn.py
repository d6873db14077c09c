"""``scripts/respawn.sh``: what keeps ``make run``'s worker and beat up (issue 12, item 17).

honcho stops every process of ``Procfile.dev`` when one exits, so the worker and beat run under
this wrapper: a command that exits on its own is started again, a stop signal stops it for good,
and a command that cannot even start is given up (and then honcho stops the demo, as before).
The commands here are small shell stand-ins that count their starts in a file.
"""

from __future__ import annotations

import os
import signal
import subprocess
from contextlib import suppress
from pathlib import Path

import pytest

from tests.faults.stack import wait_until

REPO_DIR = Path(__file__).resolve().parent.parent
RESPAWN = REPO_DIR / "scripts" / "respawn.sh"


def start_counting(starts: Path) -> str:
    """Shell code that records one start in ``starts``."""
    return f'echo "$$" >> {starts}; '


def starts_of(starts: Path) -> list[int]:
    return [int(pid) for pid in starts.read_text().split()] if starts.exists() else []


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped) counts as gone.
    with suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return False


def respawn(command: str, tmp_path: Path, **env: str) -> subprocess.Popen:
    """``respawn.sh sh -c COMMAND`` in its own process group, as honcho starts a process."""
    return subprocess.Popen(
        [str(RESPAWN), "sh", "-c", command],
        cwd=tmp_path,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


@pytest.fixture
def cleanup():
    started: list[subprocess.Popen] = []
    yield started.append
    for process in started:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)


def test_a_command_that_exits_on_its_own_is_started_again_until_the_group_is_stopped(
    tmp_path, cleanup
):
    starts = tmp_path / "starts"
    # The first run fails at once (like the worker's "Unrecoverable error"); the second stays.
    command = start_counting(starts) + f'[ "$(wc -l < {starts})" -ge 2 ] || exit 1; exec sleep 300'
    wrapper = respawn(command, tmp_path, RESPAWN_QUICK_SECONDS="0")
    cleanup(wrapper)

    wait_until(lambda: len(starts_of(starts)) == 2, timeout=30, what="the second start")
    assert wrapper.poll() is None
    second = starts_of(starts)[1]

    os.killpg(wrapper.pid, signal.SIGTERM)  # what honcho does on Ctrl-C or when another exits
    wrapper.wait(timeout=30)

    assert wrapper.returncode == 128 + signal.SIGTERM  # the command's own end, passed on
    assert not alive(second)
    assert len(starts_of(starts)) == 2  # stopping is not a reason to start again
    assert "exited with status 1; starting it again" in wrapper.stderr.read()


def test_stopping_the_wrapper_alone_stops_its_command(tmp_path, cleanup):
    starts = tmp_path / "starts"
    wrapper = respawn(start_counting(starts) + "exec sleep 300", tmp_path)
    cleanup(wrapper)
    wait_until(lambda: starts_of(starts), timeout=30, what="the command's start")
    command_pid = starts_of(starts)[0]

    wrapper.send_signal(signal.SIGTERM)  # to the wrapper only, not its group
    wrapper.wait(timeout=30)

    assert not alive(command_pid)
    assert len(starts_of(starts)) == 1


def test_a_command_that_fails_right_after_every_start_is_given_up(tmp_path, cleanup):
    starts = tmp_path / "starts"
    wrapper = respawn(start_counting(starts) + "exit 3", tmp_path, RESPAWN_MAX_QUICK_FAILURES="3")
    cleanup(wrapper)

    wrapper.wait(timeout=60)

    assert wrapper.returncode == 3  # honcho then stops the demo and shows why
    assert len(starts_of(starts)) == 3
    assert "3 times in a row" in wrapper.stderr.read()
