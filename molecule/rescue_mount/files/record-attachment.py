#!/usr/bin/python3
"""Write what the kernel shows under a mount point as JSON: the scenario's independent evidence.

Reads /proc/self/mountinfo and asks blkid for each source's UUID; shares no code with lifeline.
"""

import json
import os
import subprocess
import sys

mount_point, out = sys.argv[1], sys.argv[2]
mounts = []
with open("/proc/self/mountinfo", encoding="utf-8") as handle:
    for line in handle:
        fields = line.split()
        target = fields[4]
        if target != mount_point and not target.startswith(mount_point + "/"):
            continue
        after = fields[fields.index("-") + 1 :]
        uuid = subprocess.run(
            ["blkid", "-p", "-s", "UUID", "-o", "value", after[1]],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        mounts.append(
            {
                "target": target,
                "root": fields[3],
                "fstype": after[0],
                "source": after[1],
                "options": after[2].split(","),
                "uuid": uuid,
            }
        )


def read(path):
    path = os.path.join(mount_point, path)
    return open(path, encoding="utf-8").read().strip() if os.path.exists(path) else None


with open(out, "w", encoding="utf-8") as handle:
    json.dump(
        {
            "mounts": mounts,
            "marker": read("etc/lifeline-fixture"),
            "boot_marker": read("boot/lifeline-fixture-boot"),
        },
        handle,
    )
