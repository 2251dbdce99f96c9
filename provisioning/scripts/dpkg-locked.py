"""Runs a command holding dpkg's frontend lock, waiting for it up to a timeout as apt's
DPkg::Lock::Timeout does: `dpkg-locked.py LOCK SECONDS COMMAND…` (lib.sh: dpkg_recover).

dpkg itself fails at once when the lock is held. apt takes the frontend lock with fcntl and tells
the dpkg it runs that it holds it (DPKG_FRONTEND_LOCKED, dpkg(1)); this does the same. The lock
survives exec: fcntl record locks belong to the process and stay while the descriptor is open.
"""

import fcntl
import os
import signal
import sys

lock, timeout, command = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o640)


def expired(*_):
    sys.exit(f"dpkg's frontend lock {lock} is still held after {timeout} s (another apt or dpkg)")


signal.signal(signal.SIGALRM, expired)
signal.alarm(timeout)
fcntl.lockf(fd, fcntl.LOCK_EX)
signal.alarm(0)
os.set_inheritable(fd, True)
os.environ["DPKG_FRONTEND_LOCKED"] = "1"
os.execvp(command[0], command)
