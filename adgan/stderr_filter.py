"""The filter process of adgan/quiet.py: copies its stdin to its stdout line by line,
dropping lines that match the pattern given as its one argument. It runs with `python -S`
(no site packages: it starts fast and imports nothing of the project), and outlives a
parent that aborts, so what the parent wrote last still comes out."""

import os
import re
import sys


def write_all(data):
    """Write all of `data` to descriptor 1 (a pipe may take it in parts)."""
    while data:
        data = data[os.write(1, data):]


def main():
    """Copy descriptor 0 to 1 until end of file, without the lines matching `sys.argv[1]`."""
    notice = re.compile(sys.argv[1])
    pending = b""  # an unfinished line waits for its end
    while True:
        chunk = os.read(0, 65536)
        if not chunk:  # end of file: the unfinished line, if any, as it came
            if pending and not notice.search(pending.decode("utf-8", "replace")):
                write_all(pending)
            return
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        write_all(b"".join(line + b"\n" for line in lines
                           if not notice.search(line.decode("utf-8", "replace"))))


if __name__ == "__main__":
    main()
