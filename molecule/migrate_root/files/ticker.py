#!/usr/bin/python3
"""lifeline's test service: a line in /var/log/ticker.log every 0.2 s, the log kept open for writing."""

import os
import time

with open("/var/log/ticker.log", "a", buffering=1, encoding="utf-8") as log:
    while True:
        log.write(f"{time.time():.1f} pid {os.getpid()}\n")
        time.sleep(0.2)
