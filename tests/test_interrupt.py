"""lowrank.interrupt: a SIGINT taken by another thread than the main one interrupts the main thread's wait at once."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The main thread waits (as Snakemake's scheduler does) for at most 3 s; after 0.5 s a SIGINT is sent to another
# thread, as the kernel may do with a terminal's Ctrl-C. It prints how long the wait lasted until KeyboardInterrupt.
CHILD = """
import signal, sys, threading, time
from lowrank import interrupt
if sys.argv[1] == "watch":
    assert interrupt.forward_ctrl_c_to_main_thread()
other = threading.Thread(target=time.sleep, args=(30,), daemon=True)
other.start()
start = time.monotonic()
threading.Timer(0.5, signal.pthread_kill, (other.ident, signal.SIGINT)).start()
try:
    threading.Semaphore(0).acquire(timeout=3)
    time.sleep(0.1)
except KeyboardInterrupt:
    print(f"{time.monotonic() - start:.2f}", interrupt.ctrl_c_seen())
"""


def interrupted_after(mode: str) -> float:
    r = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, timeout=30, cwd=ROOT,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 0 and r.stdout.strip(), r.stdout + r.stderr
    seconds, seen = r.stdout.split()
    assert seen == str(mode == "watch")  # the watcher also records that a Ctrl-C came (the onerror hook asks)
    return float(seconds)


def test_sigint_taken_by_another_thread_interrupts_the_main_thread_at_once():
    assert interrupted_after("watch") < 2


def test_without_the_watcher_the_main_thread_sees_it_only_when_its_wait_ends():
    assert interrupted_after("plain") >= 3


def test_only_the_main_thread_can_install_it():
    r = subprocess.run([sys.executable, "-c", "import threading\nfrom lowrank import interrupt\nout = []\n"
                        "t = threading.Thread(target=lambda: out.append(interrupt.forward_ctrl_c_to_main_thread()))\n"
                        "t.start(); t.join(); print(out[0], interrupt.forward_ctrl_c_to_main_thread(), "
                        "interrupt.forward_ctrl_c_to_main_thread())"],
                       capture_output=True, text=True, timeout=30, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.stdout.split() == ["False", "True", "True"], r.stdout + r.stderr
