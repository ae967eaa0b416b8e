"""Runs Hippolyzer's headless proxy for tests/hippolyzer_proxy.rs.

Usage: hippolyzer_proxy.py SOCKS_PORT HTTP_PORT LEAP_PORT

The proxy starts helper processes (mitmproxy runs in its own one), so this script puts them
all in a new process group and kills the whole group as soon as its stdin closes: the test
closes it on drop, and the OS closes it if the test process dies, so nothing is left behind.
"""
import os
import signal
import sys
import threading


def _kill_group_on_stdin_eof():
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        os.killpg(0, signal.SIGKILL)


if __name__ == "__main__":
    socks_port, http_port, leap_port = sys.argv[1:4]
    os.setpgrp()
    os.environ["HIPPO_UDP_PORT"] = socks_port
    os.environ["HIPPO_HTTP_PORT"] = http_port
    os.environ["HIPPO_LEAP_PORT"] = leap_port
    os.environ["HIPPO_BIND_HOST"] = "127.0.0.1"
    threading.Thread(target=_kill_group_on_stdin_eof, daemon=True).start()
    # The proxy reads addon paths from its own argv.
    sys.argv = sys.argv[:1]
    from hippolyzer.apps.proxy import main

    main()
